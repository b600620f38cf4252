//! The full export, downloaded from the web site by an administrator: what
//! `resa export` writes (see `crate::reversibility`), as one tar archive.
//!
//! The export is written to a private temporary folder, archived next to it,
//! and the archive is streamed from an open file whose name is already
//! removed, so nothing is left on disk whatever happens to the download.
//! Every download is recorded in the audit log.

use super::{Base, render};
use crate::reports::text::t;
use crate::reversibility::{ReversibilityError, export, write_tar};
use crate::web::WebState;
use crate::web::error::{Result, WebError};
use crate::web::session::{Ctx, Role};
use askama::Template;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::path::{Path, PathBuf};
use tokio::io::AsyncReadExt;

/// The labels the template needs, in the page's language.
struct Texts(crate::domain::Lang);

impl Texts {
    fn t(&self, key: &str) -> &'static str {
        t(self.0, key)
    }
}

#[derive(Template)]
#[template(path = "export.html")]
struct ExportPage {
    base: Base,
    l: Texts,
}

pub async fn page(ctx: Ctx) -> Result<Response> {
    ctx.require(Role::Admin)?;
    let lang = ctx.lang.domain();
    let mut base = Base::new(&ctx, "nav.export");
    base.title = t(lang, "export.title").to_owned();
    render(&ExportPage { base, l: Texts(lang) })
}

/// A temporary folder removed when dropped.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn internal(e: ReversibilityError) -> WebError {
    match e {
        ReversibilityError::Store(e) => WebError::Store(e),
        other => WebError::Internal(other.to_string()),
    }
}

/// Writes the export and its archive under `work`; returns the archive, open.
async fn archive(state: &WebState, work: &Path, root: String) -> Result<std::fs::File> {
    std::fs::create_dir_all(work).map_err(|e| WebError::Internal(format!("{}: {e}", work.display())))?;
    let dir = work.join("export");
    export(&state.store, &dir, |_| {}).await.map_err(internal)?;
    let tar = work.join("export.tar");
    let file = tokio::task::spawn_blocking(move || -> std::result::Result<std::fs::File, ReversibilityError> {
        let file = std::fs::File::create(&tar).map_err(|source| ReversibilityError::Io {
            path: tar.clone(),
            source,
        })?;
        let mut w = std::io::BufWriter::new(file);
        write_tar(&dir, &root, &mut w)?;
        drop(w);
        std::fs::File::open(&tar).map_err(|source| ReversibilityError::Io { path: tar, source })
    })
    .await
    .map_err(|e| WebError::Internal(e.to_string()))?
    .map_err(internal)?;
    Ok(file)
}

/// `POST /admin/export`: the archive, as a download.
pub async fn download(State(state): State<WebState>, ctx: Ctx) -> Result<Response> {
    let user = ctx.require(Role::Admin)?;
    let now = state.clock.now();
    let day = now.with_timezone(&chrono_tz::Europe::Paris).date_naive();
    let root = format!("resa-export-{day}");
    let work = WorkDir(std::env::temp_dir().join(format!("resa-web-export-{}", uuid::Uuid::new_v4())));
    let file = archive(&state, &work.0, root.clone()).await?;
    // The open file outlives its name: removing the folder now leaves nothing behind.
    drop(work);
    state
        .store
        .record_audit(
            now,
            &user.person_id.to_string(),
            "export.download",
            "export",
            None,
            serde_json::json!({}),
        )
        .await?;
    let file = tokio::fs::File::from_std(file);
    let stream = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), Some(file)))
            }
            Err(e) => {
                tracing::warn!(error = %e, "web: export download interrupted");
                Some((Err(e), None))
            }
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-tar".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{root}.tar\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
