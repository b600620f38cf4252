//! The web site: axum routes, server-rendered askama templates, sessions kept
//! in PostgreSQL, CSRF protection, roles, security headers and static assets.
//!
//! Every page works without JavaScript (plain forms, 303 redirects after each
//! POST). Roles are computed on every request from the store (admin: member of
//! a configured admin group; manager: holds a Manage grant; agent: anyone
//! else), never kept in the cookie. This layer alone maps errors to HTTP
//! status codes: users see a message and a reference, logs get the cause.
//!
//! Map: [`session`] owns cookies, sessions, CSRF and roles; [`error`] the error
//! enum and error pages; [`i18n`] the French and English texts; [`headers`]
//! the security headers; [`pages`] the HTML handlers; [`api`] the JSON API and
//! its OpenAPI document.

pub mod actions;
pub mod api;
pub mod error;
pub mod headers;
pub mod i18n;
pub mod pages;
pub mod session;

use crate::clock::SharedClock;
use crate::directory::DirectorySettings;
use crate::store::Store;
use axum::Router;
use axum::routing::{get, post};
use std::sync::Arc;

pub use error::WebError;

/// A directory group whose members administer resa (`directory:group` in
/// the configuration, the group named by its sAMAccountName).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminGroup {
    pub directory: String,
    pub group: String,
}

impl AdminGroup {
    /// Reads `directory:group`; `None` when either part is missing.
    pub fn parse(s: &str) -> Option<AdminGroup> {
        let (directory, group) = s.split_once(':')?;
        (!directory.is_empty() && !group.is_empty()).then(|| AdminGroup {
            directory: directory.to_owned(),
            group: group.to_owned(),
        })
    }
}

/// The directories the site logs people in against, shared with the
/// daemon's reload, which swaps the whole list when `[[directory]]` changes.
#[derive(Clone, Default)]
pub struct Directories(Arc<std::sync::RwLock<Arc<Vec<DirectorySettings>>>>);

impl Directories {
    pub fn new(list: Vec<DirectorySettings>) -> Self {
        Directories(Arc::new(std::sync::RwLock::new(Arc::new(list))))
    }

    /// The current list (a request keeps the one it started with).
    pub fn get(&self) -> Arc<Vec<DirectorySettings>> {
        match self.0.read() {
            Ok(list) => list.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the list; requests under way finish with the old one.
    pub fn set(&self, list: Vec<DirectorySettings>) {
        match self.0.write() {
            Ok(mut current) => *current = Arc::new(list),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(list),
        }
    }
}

impl From<Vec<DirectorySettings>> for Directories {
    fn from(list: Vec<DirectorySettings>) -> Self {
        Directories::new(list)
    }
}

/// Everything the handlers share.
#[derive(Clone)]
pub struct WebState {
    pub store: Store,
    pub clock: SharedClock,
    /// The configured directories, for login and the live group search;
    /// a configuration reload swaps them.
    pub directories: Directories,
    pub admin_groups: Vec<AdminGroup>,
    /// Signs the pre-login CSRF token; at least 32 random bytes.
    pub secret_key: Arc<[u8]>,
    /// Sets `Secure` on cookies (and the `__Host-` prefix); off only for
    /// plain-HTTP development and tests.
    pub secure_cookies: bool,
    /// The `[[exchange]]` endpoint names a new resource may be served by.
    pub exchange_endpoints: Vec<String>,
    /// The outbox worker of this process, woken when the site queued
    /// commands for Exchange (a booking to create, a cancellation, a
    /// message); `None` when no daemon runs in the process, whose outbox
    /// worker then finds them at its next idle round.
    pub outbox_wake: Option<Arc<tokio::sync::Notify>>,
}

impl WebState {
    /// The site committed outbox commands: the worker of this process, if
    /// any, sends them now.
    pub fn outbox_queued(&self) {
        if let Some(wake) = &self.outbox_wake {
            wake.notify_one();
        }
    }
}

impl std::fmt::Debug for WebState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret key is never printed.
        f.debug_struct("WebState")
            .field("directories", &self.directories.get().len())
            .field("admin_groups", &self.admin_groups)
            .field("secure_cookies", &self.secure_cookies)
            .field("exchange_endpoints", &self.exchange_endpoints)
            .finish_non_exhaustive()
    }
}

/// The whole site: pages, API, static assets, with the session, CSRF,
/// error-page and security-header layers.
pub fn router(state: WebState) -> Router {
    let routes = Router::new()
        .route("/", get(pages::home))
        .route("/login", get(pages::auth::login_form).post(pages::auth::login_submit))
        .route("/login/demo", post(pages::auth::demo_login_submit))
        .route("/logout", post(pages::auth::logout))
        .route("/bookings", get(pages::bookings::my_bookings))
        .route("/bookings/{id}", get(pages::bookings::explain))
        .route("/bookings/{id}/cancel", post(pages::bookings::cancel))
        .route("/search", get(pages::search::search))
        .route("/calendar", get(pages::bookings::calendar))
        .route("/book", post(pages::search::book))
        .route("/approvals", get(pages::approvals::queue))
        .route("/approvals/{id}", post(pages::approvals::decide))
        .route(
            "/approve/{token}",
            get(pages::approvals::link).post(pages::approvals::link_answer),
        )
        .route(
            "/admin/territory",
            get(pages::territory::show).post(pages::territory::save),
        )
        .route("/admin/circuits", get(pages::circuits::list))
        .route(
            "/admin/circuits/new",
            get(pages::circuits::new_form).post(pages::circuits::create),
        )
        .route(
            "/admin/circuits/{id}",
            get(pages::circuits::edit_form).post(pages::circuits::update),
        )
        .route("/admin/circuits/{id}/active", post(pages::circuits::set_active))
        .route("/admin/templates", get(pages::templates_admin::list))
        .route(
            "/admin/templates/{event}/{lang}",
            get(pages::templates_admin::edit).post(pages::templates_admin::save),
        )
        .route(
            "/blackouts",
            get(pages::approvals::blackouts).post(pages::approvals::create_blackout),
        )
        .route(
            "/admin/resources",
            get(pages::admin::resources).post(pages::admin::create_resource),
        )
        .route("/admin/resources/new", get(pages::admin::resource_form))
        .route(
            "/admin/resources/{id}",
            get(pages::admin::resource_edit).post(pages::admin::save_resource),
        )
        .route(
            "/admin/resources/import",
            get(pages::resource_import::form).post(pages::resource_import::import),
        )
        .route(
            "/admin/resources/{id}/attributes",
            get(pages::equipment::resource_attributes).post(pages::equipment::save_resource_attributes),
        )
        .route(
            "/admin/types/{id}/attributes",
            get(pages::equipment::type_attributes).post(pages::equipment::add_type_attribute),
        )
        .route(
            "/admin/types/{id}/attributes/{key}/delete",
            post(pages::equipment::remove_type_attribute),
        )
        .route(
            "/admin/organisations",
            get(pages::org_admin::organisations).post(pages::org_admin::create_organisation),
        )
        .route(
            "/admin/organisations/{id}",
            get(pages::org_admin::organisation).post(pages::org_admin::update_organisation),
        )
        .route(
            "/admin/organisations/{id}/delete",
            post(pages::org_admin::delete_organisation),
        )
        .route(
            "/admin/sites",
            get(pages::org_admin::sites_index).post(pages::org_admin::create_site),
        )
        .route("/admin/sites/new", get(pages::org_admin::new_site))
        .route(
            "/admin/sites/{id}",
            get(pages::org_admin::site).post(pages::org_admin::update_site),
        )
        .route("/admin/sites/{id}/hours", post(pages::org_admin::save_hours))
        .route("/admin/sites/{id}/holidays", post(pages::org_admin::add_holiday))
        .route(
            "/admin/sites/{id}/holidays/{holiday}/delete",
            post(pages::org_admin::remove_holiday),
        )
        .route("/admin/sites/{id}/delete", post(pages::org_admin::delete_site))
        .route(
            "/admin/types",
            get(pages::org_admin::types).post(pages::org_admin::create_type),
        )
        .route(
            "/admin/types/{id}",
            get(pages::org_admin::resource_type).post(pages::org_admin::update_type),
        )
        .route("/admin/types/{id}/delete", post(pages::org_admin::delete_type))
        .route("/admin/policies", get(pages::admin::policies))
        .route(
            "/admin/policies/{kind}/{id}",
            get(pages::admin::policy_page).post(pages::admin::save_policy),
        )
        .route(
            "/admin/grants",
            get(pages::admin::grants).post(pages::admin::create_grant),
        )
        .route("/admin/grants/{id}/delete", post(pages::admin::delete_grant))
        .route("/admin/audit", get(pages::admin::audit))
        .route("/admin/status", get(pages::admin::status))
        .route("/reports", get(pages::reports::page))
        .route("/reports/{file}", get(pages::reports::csv))
        .route("/admin/export", get(pages::export::page).post(pages::export::download))
        .route("/admin/status/{id}/resync", post(pages::admin::resync))
        .route("/vehicules", get(pages::vehicles::list))
        .route("/vehicules/prets/{id}", get(pages::vehicles::loan))
        .route("/vehicules/prets/{id}/presence", post(pages::vehicles::check_in))
        .route("/vehicules/prets/{id}/depart", post(pages::vehicles::pickup))
        .route(
            "/vehicules/prets/{id}/retour",
            post(pages::vehicles::give_back)
                .layer(axum::extract::DefaultBodyLimit::max(pages::vehicles::MAX_RETURN_BODY)),
        )
        .route("/vehicules/photos/{id}", get(pages::vehicles::photo))
        .route("/vehicules/demande", post(pages::vehicles::ask_car))
        .route(
            "/vehicules/trajets/{id}",
            get(pages::vehicles::trip).post(pages::vehicles::save_trip),
        )
        .route("/vehicules/alertes/{id}", post(pages::vehicles::dismiss))
        .route("/vehicules/flotte", get(pages::vehicles::fleet))
        .route("/vehicules/flotte/{id}", post(pages::vehicles::save_vehicle))
        .route("/vehicules/permis", post(pages::vehicles::save_licence))
        .route("/vehicules/rapports", get(pages::vehicles::reports))
        .route("/vehicules/flotte/{id}/dommages", get(pages::vehicles::damage))
        .route("/api/openapi.json", get(api::openapi))
        .route("/api/v1/me", get(api::me))
        .route("/api/v1/bookings", get(api::bookings).post(api::book))
        .route("/api/v1/bookings/{id}", get(api::booking))
        .route("/api/v1/bookings/{id}/cancel", post(api::cancel))
        .route("/api/v1/approvals", get(api::approvals))
        .route("/api/v1/approvals/{id}", post(api::decide))
        .route("/api/v1/resources", get(api::resources))
        .route("/api/v1/organisations", get(api::organisations))
        .route("/api/v1/sites", get(api::sites))
        .route("/api/v1/resource-types", get(api::resource_types))
        .route("/static/{file}", get(pages::assets::asset))
        .fallback(pages::not_found);
    routes
        .layer(axum::middleware::from_fn_with_state(state.clone(), session::layer))
        .layer(axum::middleware::from_fn_with_state(
            state.secure_cookies,
            headers::security_headers,
        ))
        .with_state(state)
}

/// How often expired sessions are deleted.
const SESSION_PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Serves the site on `listener` until `shutdown` completes, then lets
/// requests in flight finish. Expired sessions are purged meanwhile, in this
/// same future, so nothing outlives the server.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: WebState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, Router::new(), shutdown).await
}

/// [`serve`], with more routes beside the site's (the daemon's health and
/// metrics).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: WebState,
    extra: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (store, clock) = (state.store.clone(), state.clock.clone());
    let purge = async move {
        let mut tick = tokio::time::interval(SESSION_PURGE_EVERY);
        loop {
            tick.tick().await;
            match store.purge_sessions(clock.now()).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(sessions = n, "web: expired sessions purged"),
                Err(e) => tracing::warn!(error = %e, "web: cannot purge expired sessions"),
            }
        }
    };
    let server = axum::serve(listener, extra.merge(router(state))).with_graceful_shutdown(shutdown);
    tokio::select! {
        result = server.into_future() => result,
        never = purge => never,
    }
}
