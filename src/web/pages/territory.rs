//! The territory (admins): the communes inside which a vehicle trip needs no
//! approval of its own; a trip elsewhere matches the circuits' "outside the
//! territory" condition.

use super::bookings::FlashQuery;
use super::{Base, render, see_other};
use crate::domain::territory::{parse_lines, to_lines};
use crate::web::WebState;
use crate::web::error::Result;
use crate::web::session::{Ctx, Role};
use askama::Template;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// The longest text accepted, in characters (a few hundred communes).
const TEXT_MAX: usize = 50_000;

#[derive(Template)]
#[template(path = "territory.html")]
struct TerritoryPage {
    base: Base,
    text: String,
    count: usize,
    errors: Vec<String>,
}

pub async fn show(State(state): State<WebState>, ctx: Ctx, Query(q): Query<FlashQuery>) -> Result<Response> {
    ctx.require(Role::Admin)?;
    let territory = state.store.territory().await?;
    render(&TerritoryPage {
        base: Base::new(&ctx, "territory.title").with_flash(q.msg.as_deref()),
        text: to_lines(territory.communes()),
        count: territory.communes().len(),
        errors: Vec::new(),
    })
}

#[derive(Debug, Deserialize)]
pub struct TerritoryForm {
    #[serde(default)]
    communes: String,
}

/// Replaces the communes. Every wrong line is named and nothing is saved;
/// the text typed is shown again.
pub async fn save(State(state): State<WebState>, ctx: Ctx, Form(form): Form<TerritoryForm>) -> Result<Response> {
    let user = ctx.require(Role::Admin)?;
    let lang = ctx.lang;
    let text: String = form.communes.chars().take(TEXT_MAX).collect();
    let problems = match parse_lines(&text) {
        Ok(communes) if !communes.is_empty() => {
            state.store.set_territory(&communes).await?;
            state
                .store
                .record_audit(
                    state.clock.now(),
                    &user.person_id.to_string(),
                    "territory.update",
                    "territory",
                    None,
                    serde_json::json!({ "communes": communes.iter().map(|c| c.name.clone()).collect::<Vec<_>>() }),
                )
                .await?;
            return Ok(see_other("/admin/territory?msg=territory.saved"));
        }
        Ok(_) => vec![lang.text("territory.error.empty").to_owned()],
        Err(lines) => lines
            .into_iter()
            .map(|(n, p)| format!("{} {n} : {}", lang.text("territory.line"), lang.text(p.key())))
            .collect(),
    };
    let count = state.store.territory().await?.communes().len();
    let page = TerritoryPage {
        base: Base::new(&ctx, "territory.title"),
        text,
        count,
        errors: problems,
    };
    Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response())
}
