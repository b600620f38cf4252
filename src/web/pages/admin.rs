//! Admin pages: resources, policies per scope, grants (with the live
//! directory group search), the audit log and the service status.

use super::bookings::FlashQuery;
use super::{Base, instant, render, see_other, tr};
use crate::store::StoreError;
use crate::store::catalogue::NewResource;
use crate::store::directory::{GrantRole, GrantScope, GrantSubject, NewGrant};
use crate::store::web::{AuditFilter, ResourceRow, SiteRow, TypeRow};
use crate::web::WebState;
use crate::web::error::{Result, WebError};
use crate::web::i18n::Lang;
use crate::web::session::{Ctx, Role};
use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use std::collections::HashMap;
use uuid::Uuid;

// ---------------------------------------------------------------- resources

struct ResourceLine {
    id: Uuid,
    name: String,
    mailbox: String,
    site: String,
    kind: String,
    capacity: String,
    active: &'static str,
}

#[derive(Template)]
#[template(path = "resources.html")]
struct ResourcesPage {
    base: Base,
    lines: Vec<ResourceLine>,
}

pub async fn resources(State(state): State<WebState>, ctx: Ctx, Query(q): Query<FlashQuery>) -> Result<Response> {
    ctx.require(Role::Admin)?;
    let lang = ctx.lang;
    let lines = state
        .store
        .list_resources()
        .await?
        .into_iter()
        .map(|r| ResourceLine {
            id: r.id,
            kind: tr(lang, &r.type_name_fr, &r.type_name_en),
            site: format!("{} — {}", r.organisation_name, r.site_name),
            name: r.name,
            mailbox: r.mailbox_smtp,
            capacity: r.capacity.map(|c| c.to_string()).unwrap_or_else(|| "—".into()),
            active: lang.text(if r.active { "yes" } else { "no" }),
        })
        .collect();
    render(&ResourcesPage {
        base: Base::new(&ctx, "resources.title").with_flash(q.msg.as_deref()),
        lines,
    })
}

struct Choice {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "resource_form.html")]
struct ResourceFormPage {
    base: Base,
    error: Option<&'static str>,
    /// Where the form posts: `/admin/resources`, or the resource's own page.
    action: String,
    /// Editing an existing resource (its type is then fixed).
    editing: bool,
    active: bool,
    name: String,
    mailbox: String,
    capacity: String,
    endpoint: String,
    sites: Vec<Choice>,
    types: Vec<Choice>,
    endpoints: Vec<Choice>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ResourceForm {
    name: String,
    mailbox: String,
    site: String,
    kind: String,
    capacity: String,
    #[serde(default)]
    endpoint: String,
    /// Ticked on the edit form when the resource may be booked.
    #[serde(default)]
    active: Option<String>,
}

fn site_choices(sites: &[SiteRow], selected: &str) -> Vec<Choice> {
    sites
        .iter()
        .map(|s| Choice {
            value: s.id.to_string(),
            label: format!("{} — {}", s.organisation_name, s.name),
            selected: s.id.to_string() == selected,
        })
        .collect()
}

fn type_choices(types: &[TypeRow], lang: Lang, selected: &str) -> Vec<Choice> {
    types
        .iter()
        .map(|t| Choice {
            value: t.id.to_string(),
            label: tr(lang, &t.name_fr, &t.name_en),
            selected: t.id.to_string() == selected,
        })
        .collect()
}

async fn resource_form_page(
    state: &WebState,
    ctx: &Ctx,
    form: &ResourceForm,
    error: Option<&'static str>,
) -> Result<ResourceFormPage> {
    let sites = state.store.list_sites().await?;
    let types = state.store.list_resource_types().await?;
    Ok(ResourceFormPage {
        base: Base::new(ctx, "resources.new"),
        error,
        action: "/admin/resources".into(),
        editing: false,
        active: true,
        name: form.name.clone(),
        mailbox: form.mailbox.clone(),
        capacity: form.capacity.clone(),
        endpoint: form.endpoint.clone(),
        sites: site_choices(&sites, &form.site),
        types: type_choices(&types, ctx.lang, &form.kind),
        endpoints: state
            .exchange_endpoints
            .iter()
            .map(|e| Choice {
                value: e.clone(),
                label: e.clone(),
                selected: *e == form.endpoint,
            })
            .collect(),
    })
}

pub async fn resource_form(State(state): State<WebState>, ctx: Ctx) -> Result<Response> {
    ctx.require(Role::Admin)?;
    render(&resource_form_page(&state, &ctx, &ResourceForm::default(), None).await?)
}

/// What a resource form holds once read, or `None` when a field is wrong.
struct ReadResource {
    name: String,
    mailbox: String,
    capacity: Option<i32>,
    site: Uuid,
    kind: Uuid,
    endpoint: String,
}

fn read_resource(state: &WebState, form: &ResourceForm) -> Option<ReadResource> {
    let name = form.name.trim();
    let mailbox = form.mailbox.trim().to_lowercase();
    let capacity = match form.capacity.trim() {
        "" => Some(None),
        c => c.parse::<i32>().ok().filter(|c| *c >= 0).map(Some),
    }?;
    let endpoint = if form.endpoint.trim().is_empty() {
        state
            .exchange_endpoints
            .first()
            .cloned()
            .unwrap_or_else(|| "default".to_owned())
    } else {
        form.endpoint.trim().to_owned()
    };
    let mailbox_ok = mailbox.split_once('@').is_some_and(|(l, d)| {
        !l.is_empty() && d.contains('.') && !d.starts_with('.') && !mailbox.contains(char::is_whitespace)
    });
    if !mailbox_ok || name.is_empty() || name.chars().count() > 200 {
        return None;
    }
    Some(ReadResource {
        name: name.to_owned(),
        mailbox,
        capacity,
        site: form.site.parse().ok()?,
        kind: form.kind.parse().ok()?,
        endpoint,
    })
}

pub async fn create_resource(
    State(state): State<WebState>,
    ctx: Ctx,
    Form(form): Form<ResourceForm>,
) -> Result<Response> {
    let user = ctx.require(Role::Admin)?;
    let Some(r) = read_resource(&state, &form) else {
        let page = resource_form_page(&state, &ctx, &form, Some(ctx.lang.text("resources.invalid"))).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    };
    let created = state
        .store
        .create_resource(&NewResource {
            site_id: r.site,
            resource_type_id: r.kind,
            name: &r.name,
            mailbox_smtp: &r.mailbox,
            exchange_endpoint: &r.endpoint,
            capacity: r.capacity,
        })
        .await;
    let resource = match created {
        Ok(r) => r,
        Err(StoreError::Duplicate(_)) => {
            let page = resource_form_page(&state, &ctx, &form, Some(ctx.lang.text("resources.duplicate"))).await?;
            return Ok((StatusCode::CONFLICT, render(&page)?).into_response());
        }
        Err(StoreError::Invalid(_) | StoreError::NotFound(_)) => {
            let page = resource_form_page(&state, &ctx, &form, Some(ctx.lang.text("resources.invalid"))).await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
        }
        Err(e) => return Err(e.into()),
    };
    state
        .store
        .record_audit(
            state.clock.now(),
            &user.person_id.to_string(),
            "resource.create",
            "resource",
            Some(&resource.id.to_string()),
            serde_json::json!({ "name": resource.name, "mailbox": resource.mailbox_smtp }),
        )
        .await?;
    Ok(see_other("/admin/resources?msg=resources.created"))
}

/// The edit form of one resource, filled with `form` (what is stored, or
/// what was typed).
async fn edit_page(
    state: &WebState,
    ctx: &Ctx,
    id: Uuid,
    form: &ResourceForm,
    active: bool,
    error: Option<&'static str>,
) -> Result<ResourceFormPage> {
    let mut page = resource_form_page(state, ctx, form, error).await?;
    page.base = Base::new(ctx, "resources.edit");
    page.action = format!("/admin/resources/{id}");
    page.editing = true;
    page.active = active;
    Ok(page)
}

pub async fn resource_edit(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(id): Path<Uuid>,
    Query(q): Query<FlashQuery>,
) -> Result<Response> {
    ctx.require(Role::Admin)?;
    let Some(row) = state.store.resource_row(id).await? else {
        return Err(WebError::NotFound);
    };
    let endpoint = state
        .store
        .resource_by_mailbox(&row.mailbox_smtp)
        .await?
        .map(|r| r.exchange_endpoint)
        .unwrap_or_default();
    let form = ResourceForm {
        name: row.name,
        mailbox: row.mailbox_smtp,
        site: row.site_id.to_string(),
        kind: row.resource_type_id.to_string(),
        capacity: row.capacity.map(|c| c.to_string()).unwrap_or_default(),
        endpoint,
        active: None,
    };
    let mut page = edit_page(&state, &ctx, id, &form, row.active, None).await?;
    page.base = page.base.with_flash(q.msg.as_deref());
    render(&page)
}

/// Saves a resource's name, mailbox, site, capacity, Exchange server and
/// whether it may be booked; its type stays (its attributes depend on it).
pub async fn save_resource(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(id): Path<Uuid>,
    Form(mut form): Form<ResourceForm>,
) -> Result<Response> {
    let user = ctx.require(Role::Admin)?;
    let Some(row) = state.store.resource_row(id).await? else {
        return Err(WebError::NotFound);
    };
    form.kind = row.resource_type_id.to_string();
    let active = form.active.is_some();
    let refuse = |status: StatusCode, key: &'static str| {
        let (state, ctx, form) = (&state, &ctx, &form);
        async move {
            let page = edit_page(state, ctx, id, form, active, Some(ctx.lang.text(key))).await?;
            Ok::<Response, WebError>((status, render(&page)?).into_response())
        }
    };
    let Some(r) = read_resource(&state, &form) else {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, "resources.invalid").await;
    };
    let saved = state
        .store
        .update_resource(
            id,
            &NewResource {
                site_id: r.site,
                resource_type_id: r.kind,
                name: &r.name,
                mailbox_smtp: &r.mailbox,
                exchange_endpoint: &r.endpoint,
                capacity: r.capacity,
            },
            active,
        )
        .await;
    match saved {
        Ok(true) => {}
        Ok(false) => return Err(WebError::NotFound),
        Err(StoreError::Duplicate(_)) => return refuse(StatusCode::CONFLICT, "resources.duplicate").await,
        Err(StoreError::Invalid(_) | StoreError::NotFound(_)) => {
            return refuse(StatusCode::UNPROCESSABLE_ENTITY, "resources.invalid").await;
        }
        Err(e) => return Err(e.into()),
    }
    state
        .store
        .record_audit(
            state.clock.now(),
            &user.person_id.to_string(),
            "resource.update",
            "resource",
            Some(&id.to_string()),
            serde_json::json!({
                "name": r.name, "mailbox": r.mailbox, "site": r.site, "capacity": r.capacity,
                "exchange": r.endpoint, "active": active,
            }),
        )
        .await?;
    Ok(see_other(&format!("/admin/resources/{id}?msg=resources.saved")))
}

// ---------------------------------------------------------------- policies

struct ScopeLink {
    href: String,
    label: String,
}

#[derive(Template)]
#[template(path = "policies.html")]
struct PoliciesPage {
    base: Base,
    scopes: Vec<ScopeLink>,
}

pub async fn policies(State(state): State<WebState>, ctx: Ctx) -> Result<Response> {
    ctx.require(Role::Admin)?;
    let lang = ctx.lang;
    let mut scopes = vec![ScopeLink {
        href: "/admin/policies/global/-".into(),
        label: lang.text("scope.global").into(),
    }];
    for o in state.store.list_organisations().await? {
        scopes.push(ScopeLink {
            href: format!("/admin/policies/organisation/{}", o.id),
            label: format!("{} « {} »", lang.text("scope.organisation"), o.name),
        });
    }
    for s in state.store.list_sites().await? {
        scopes.push(ScopeLink {
            href: format!("/admin/policies/site/{}", s.id),
            label: format!("{} « {} — {} »", lang.text("scope.site"), s.organisation_name, s.name),
        });
    }
    for t in state.store.list_resource_types().await? {
        scopes.push(ScopeLink {
            href: format!("/admin/policies/resource_type/{}", t.id),
            label: format!(
                "{} « {} »",
                lang.text("scope.resource_type"),
                tr(lang, &t.name_fr, &t.name_en)
            ),
        });
    }
    for r in state.store.list_resources().await? {
        scopes.push(ScopeLink {
            href: format!("/admin/policies/resource/{}", r.id),
            label: format!("{} « {} »", lang.text("scope.resource"), r.name),
        });
    }
    render(&PoliciesPage {
        base: Base::new(&ctx, "policies.title"),
        scopes,
    })
}

pub async fn policy_page(
    State(state): State<WebState>,
    ctx: Ctx,
    Path((kind, id)): Path<(String, String)>,
    Query(q): Query<FlashQuery>,
) -> Result<Response> {
    super::policy_form::show(&state, &ctx, &kind, &id, q.msg.as_deref()).await
}

pub async fn save_policy(
    State(state): State<WebState>,
    ctx: Ctx,
    Path((kind, id)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response> {
    super::policy_form::save(&state, &ctx, &kind, &id, form).await
}

// ---------------------------------------------------------------- grants

struct GrantLine {
    id: Uuid,
    subject: String,
    scope: String,
    role: &'static str,
}

struct GroupResult {
    directory: String,
    guid: Uuid,
    name: String,
    account: String,
    description: String,
}

#[derive(Template)]
#[template(path = "grants.html")]
struct GrantsPage {
    base: Base,
    lines: Vec<GrantLine>,
    q: String,
    searched: bool,
    results: Vec<GroupResult>,
    search_errors: Vec<String>,
    scopes: Vec<Choice>,
    roles: Vec<Choice>,
    error: Option<&'static str>,
}

#[derive(Debug, Default, Deserialize)]
pub struct GrantsQuery {
    q: Option<String>,
    msg: Option<String>,
}

fn grant_scope_label(scope: &GrantScope, names: &HashMap<Uuid, String>, lang: Lang) -> String {
    let named = |key: &str, id: &Uuid| {
        format!(
            "{} « {} »",
            lang.text(key),
            names.get(id).map(String::as_str).unwrap_or("?")
        )
    };
    match scope {
        GrantScope::Global => lang.text("scope.global").to_owned(),
        GrantScope::Organisation(id) => named("scope.organisation", id),
        GrantScope::Site(id) => named("scope.site", id),
        GrantScope::SiteType { site, resource_type } => format!(
            "{} « {} » / « {} »",
            lang.text("scope.site_type"),
            names.get(resource_type).map(String::as_str).unwrap_or("?"),
            names.get(site).map(String::as_str).unwrap_or("?")
        ),
        GrantScope::ResourceType(id) => named("scope.resource_type", id),
        GrantScope::Resource(id) => named("scope.resource", id),
    }
}

async fn scope_choices(state: &WebState, lang: Lang) -> Result<Vec<Choice>> {
    let mut out = vec![Choice {
        value: "global".into(),
        label: lang.text("scope.global").into(),
        selected: false,
    }];
    let push = |out: &mut Vec<Choice>, kind: &str, id: Uuid, label: String| {
        out.push(Choice {
            value: format!("{kind}:{id}"),
            label,
            selected: false,
        })
    };
    for o in state.store.list_organisations().await? {
        push(
            &mut out,
            "organisation",
            o.id,
            format!("{} « {} »", lang.text("scope.organisation"), o.name),
        );
    }
    for s in state.store.list_sites().await? {
        push(
            &mut out,
            "site",
            s.id,
            format!("{} « {} — {} »", lang.text("scope.site"), s.organisation_name, s.name),
        );
    }
    for t in state.store.list_resource_types().await? {
        let name = tr(lang, &t.name_fr, &t.name_en);
        push(
            &mut out,
            "resource_type",
            t.id,
            format!("{} « {name} »", lang.text("scope.resource_type")),
        );
    }
    for r in state.store.list_resources().await? {
        push(
            &mut out,
            "resource",
            r.id,
            format!("{} « {} »", lang.text("scope.resource"), r.name),
        );
    }
    Ok(out)
}

fn role_choices(lang: Lang) -> Vec<Choice> {
    ["book", "request", "manage", "view", "deny"]
        .iter()
        .map(|r| Choice {
            value: (*r).to_owned(),
            label: lang.text(&format!("role.{r}")).to_owned(),
            selected: *r == "book",
        })
        .collect()
}

async fn grants_page(state: &WebState, ctx: &Ctx, q: &GrantsQuery, error: Option<&'static str>) -> Result<GrantsPage> {
    let lang = ctx.lang;
    let names = state.store.object_names().await?;
    let lines = state
        .store
        .list_grants()
        .await?
        .into_iter()
        .map(|g| GrantLine {
            id: g.id,
            subject: match g.subject {
                GrantSubject::Person(id) | GrantSubject::Group(id) => {
                    names.get(&id).cloned().unwrap_or_else(|| "?".into())
                }
            },
            scope: grant_scope_label(&g.scope, &names, lang),
            role: lang.text(&format!("role.{}", g.role.as_str())),
        })
        .collect();
    let text = q.q.as_deref().map(str::trim).unwrap_or_default().to_owned();
    let mut results = Vec::new();
    let mut search_errors = Vec::new();
    let configured = state.directories.get();
    if !text.is_empty() && configured.is_empty() {
        // No directory to ask live (the demo): the groups synced earlier.
        results.extend(state.store.search_synced_groups(&text, 50).await?.into_iter().map(
            |(directory, guid, name, account, description)| GroupResult {
                directory,
                guid,
                name,
                account,
                description: description.unwrap_or_default(),
            },
        ));
    }
    if !text.is_empty() {
        for d in configured.iter() {
            match crate::directory::search_groups(d, &text).await {
                Ok(hits) => results.extend(hits.into_iter().map(|h| GroupResult {
                    directory: d.name.clone(),
                    guid: h.object_guid,
                    name: h.name,
                    account: h.sam_account_name,
                    description: h.description.unwrap_or_default(),
                })),
                Err(e) => {
                    tracing::warn!(directory.name = %d.name, error = %e, "web: group search failed");
                    let message = match lang {
                        Lang::Fr => e.message_fr(),
                        Lang::En => e.message_en(),
                    };
                    search_errors.push(format!(
                        "{} {} — {message}",
                        lang.text("grants.directory_error"),
                        d.name
                    ));
                }
            }
        }
    }
    Ok(GrantsPage {
        base: Base::new(ctx, "grants.title").with_flash(q.msg.as_deref()),
        lines,
        searched: !text.is_empty(),
        q: text,
        results,
        search_errors,
        scopes: scope_choices(state, lang).await?,
        roles: role_choices(lang),
        error,
    })
}

pub async fn grants(State(state): State<WebState>, ctx: Ctx, Query(q): Query<GrantsQuery>) -> Result<Response> {
    ctx.require(Role::Admin)?;
    render(&grants_page(&state, &ctx, &q, None).await?)
}

#[derive(Debug, Deserialize)]
pub struct GrantForm {
    directory: String,
    guid: Uuid,
    scope: String,
    role: String,
}

fn parse_grant_scope(s: &str) -> Option<GrantScope> {
    if s == "global" {
        return Some(GrantScope::Global);
    }
    let (kind, id) = s.split_once(':')?;
    let id = id.parse().ok()?;
    Some(match kind {
        "organisation" => GrantScope::Organisation(id),
        "site" => GrantScope::Site(id),
        "resource_type" => GrantScope::ResourceType(id),
        "resource" => GrantScope::Resource(id),
        _ => return None,
    })
}

pub async fn create_grant(State(state): State<WebState>, ctx: Ctx, Form(form): Form<GrantForm>) -> Result<Response> {
    let user = ctx.require(Role::Admin)?;
    let (Some(scope), Some(role)) = (parse_grant_scope(&form.scope), GrantRole::parse(&form.role)) else {
        return Err(WebError::BadRequest(ctx.lang.text("error.bad_request").into()));
    };
    let Some(group) = state.store.group_by_guid(&form.directory, form.guid).await? else {
        let page = grants_page(
            &state,
            &ctx,
            &GrantsQuery::default(),
            Some(ctx.lang.text("grants.not_synced")),
        )
        .await?;
        return Ok((StatusCode::CONFLICT, render(&page)?).into_response());
    };
    let id = state
        .store
        .create_grant(&NewGrant {
            subject: GrantSubject::Group(group.id),
            scope,
            role,
            created_by: Some(user.person_id),
        })
        .await?;
    state
        .store
        .record_audit(
            state.clock.now(),
            &user.person_id.to_string(),
            "grant.create",
            "grant",
            Some(&id.to_string()),
            serde_json::json!({ "group": group.name, "directory": form.directory, "scope": form.scope, "role": role.as_str() }),
        )
        .await?;
    Ok(see_other("/admin/grants?msg=grants.created"))
}

pub async fn delete_grant(State(state): State<WebState>, ctx: Ctx, Path(id): Path<Uuid>) -> Result<Response> {
    let user = ctx.require(Role::Admin)?;
    if !state.store.delete_grant(id).await? {
        return Err(WebError::NotFound);
    }
    state
        .store
        .record_audit(
            state.clock.now(),
            &user.person_id.to_string(),
            "grant.delete",
            "grant",
            Some(&id.to_string()),
            serde_json::json!({}),
        )
        .await?;
    Ok(see_other("/admin/grants?msg=grants.deleted"))
}

// ---------------------------------------------------------------- audit

struct AuditLine {
    at: String,
    actor: String,
    action: String,
    object: String,
    details: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    base: Base,
    lines: Vec<AuditLine>,
    actor: String,
    from: String,
    to: String,
    actions: Vec<Choice>,
    kinds: Vec<Choice>,
}

#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    object_kind: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn day_start(s: Option<&str>, days_after: i64) -> Option<DateTime<Utc>> {
    let d = NaiveDate::parse_from_str(s?.trim(), "%Y-%m-%d").ok()? + chrono::Duration::days(days_after);
    let local = d.and_hms_opt(0, 0, 0)?;
    use chrono::TimeZone;
    chrono_tz::Europe::Paris
        .from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

pub async fn audit(State(state): State<WebState>, ctx: Ctx, Query(q): Query<AuditQuery>) -> Result<Response> {
    ctx.require(Role::Admin)?;
    let lang = ctx.lang;
    let filter = AuditFilter {
        actor: non_empty(&q.actor),
        action: non_empty(&q.action),
        object_kind: non_empty(&q.object_kind),
        from: day_start(q.from.as_deref(), 0),
        to: day_start(q.to.as_deref(), 1),
    };
    let names = state.store.object_names().await?;
    let lines = state
        .store
        .audit_entries(&filter, 500)
        .await?
        .into_iter()
        .map(|a| AuditLine {
            at: instant(lang, "Europe/Paris", a.at),
            actor: a
                .actor
                .parse::<Uuid>()
                .ok()
                .and_then(|id| names.get(&id).cloned())
                .unwrap_or(a.actor),
            action: a.action,
            object: format!("{} {}", a.object_kind, a.object_id.unwrap_or_default()),
            details: a.details.to_string(),
        })
        .collect();
    let (actions, kinds) = state.store.audit_vocabulary().await?;
    let choices = |all: Vec<String>, selected: &Option<String>| {
        all.into_iter()
            .map(|v| Choice {
                selected: selected.as_deref() == Some(v.as_str()),
                label: v.clone(),
                value: v,
            })
            .collect()
    };
    render(&AuditPage {
        base: Base::new(&ctx, "audit.title"),
        lines,
        actor: filter.actor.clone().unwrap_or_default(),
        from: q.from.clone().unwrap_or_default(),
        to: q.to.clone().unwrap_or_default(),
        actions: choices(actions, &filter.action),
        kinds: choices(kinds, &filter.object_kind),
    })
}

// ---------------------------------------------------------------- status

struct DirectoryLine {
    name: String,
    last_sync: String,
    last_full_sync: String,
    people: i64,
    groups: i64,
    state: &'static str,
    error: String,
}

struct MailboxLine {
    id: Uuid,
    name: String,
    mailbox: String,
    last_sync: String,
    /// How long since the last successful pass, in words.
    lag: String,
    /// The lag is long enough to look at.
    late: bool,
    last_event: String,
    lease: String,
    error: String,
    drift: i64,
    /// A resync was asked for and not done yet.
    resync_pending: bool,
}

struct DriftLine {
    resource: String,
    kind: &'static str,
    uid: String,
    subject: String,
    when: String,
    found: String,
}

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage {
    base: Base,
    directories: Vec<DirectoryLine>,
    mailboxes: Vec<MailboxLine>,
    drift: Vec<DriftLine>,
}

/// A lag beyond which a mailbox is shown as late.
const LATE_AFTER_MINUTES: i64 = 15;

/// "3 min", "2 h 05", "4 j" from a duration.
fn lag_text(lang: Lang, d: chrono::Duration) -> String {
    let minutes = d.num_minutes().max(0);
    match minutes {
        0 => lang.text("admin.lag_now").to_owned(),
        1..60 => format!("{minutes} min"),
        60..2880 => format!("{} h {:02}", minutes / 60, minutes % 60),
        _ => format!("{} {}", minutes / 1440, lang.text("admin.days")),
    }
}

/// A drift's dates, from its details (`start`, `end` as RFC 3339).
fn drift_when(lang: Lang, details: &serde_json::Value) -> String {
    let at = |k: &str| {
        details[k]
            .as_str()
            .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    match (at("start"), at("end")) {
        (Some(s), Some(e)) => super::span(lang, "Europe/Paris", s, e),
        (Some(s), None) => instant(lang, "Europe/Paris", s),
        _ => String::new(),
    }
}

pub async fn status(State(state): State<WebState>, ctx: Ctx, Query(q): Query<FlashQuery>) -> Result<Response> {
    ctx.require(Role::Admin)?;
    let lang = ctx.lang;
    let now = state.clock.now();
    let when = |t: Option<DateTime<Utc>>| match t {
        Some(t) => instant(lang, "Europe/Paris", t),
        None => lang.text("admin.never").to_owned(),
    };
    let directories = crate::directory::directory_status(&state.store, &state.directories.get(), now)
        .await?
        .into_iter()
        .map(|d| DirectoryLine {
            last_sync: when(d.last_sync_at),
            last_full_sync: when(d.last_full_sync_at),
            people: d.people_active,
            groups: d.groups,
            state: lang.text(if d.stale { "admin.stale" } else { "admin.ok" }),
            error: d.problems(),
            name: d.name,
        })
        .collect();
    let mailboxes = state
        .store
        .mailbox_sync_status()
        .await?
        .into_iter()
        .map(|m| MailboxLine {
            id: m.resource_id,
            last_sync: when(m.last_sync_at),
            lag: match m.last_sync_at {
                Some(t) => lag_text(lang, now - t),
                None => lang.text("admin.never").to_owned(),
            },
            late: m
                .last_sync_at
                .is_none_or(|t| (now - t).num_minutes() >= LATE_AFTER_MINUTES),
            last_event: when(m.last_event_at),
            lease: m.lease_owner.unwrap_or_default(),
            error: m.last_error.unwrap_or_default(),
            drift: m.open_drift,
            resync_pending: m.resync_requested_at.is_some(),
            name: m.resource_name,
            mailbox: m.mailbox_smtp,
        })
        .collect();
    let drift = state
        .store
        .open_drift_all(200)
        .await?
        .into_iter()
        .map(|d| DriftLine {
            kind: lang.text(match d.kind.as_str() {
                "unknown_item" => "admin.drift_unknown_item",
                "missing_item" => "admin.drift_missing_item",
                _ => "admin.drift_time_mismatch",
            }),
            uid: d.uid.unwrap_or_default(),
            subject: d.details["subject"].as_str().unwrap_or_default().to_owned(),
            when: drift_when(lang, &d.details),
            found: instant(lang, "Europe/Paris", d.found_at),
            resource: d.resource_name,
        })
        .collect();
    render(&StatusPage {
        base: Base::new(&ctx, "admin.status_title").with_flash(q.msg.as_deref()),
        directories,
        mailboxes,
        drift,
    })
}

/// Asks the daemon to read one mailbox again from scratch (its Inbox from an
/// empty sync state; decisions already taken are recognised by UID and
/// sequence, so nothing is decided twice).
pub async fn resync(State(state): State<WebState>, ctx: Ctx, Path(id): Path<Uuid>) -> Result<Response> {
    let user = ctx.require(Role::Admin)?;
    let now = state.clock.now();
    if !state.store.request_mailbox_resync(id, now).await? {
        return Err(WebError::NotFound);
    }
    state
        .store
        .record_audit(
            now,
            &user.person_id.to_string(),
            "mailbox.resync",
            "resource",
            Some(&id.to_string()),
            serde_json::json!({}),
        )
        .await?;
    Ok(see_other("/admin/status?msg=admin.resync_requested"))
}

/// A resource row's label for selects elsewhere.
pub fn resource_label(r: &ResourceRow) -> String {
    format!("{} ({})", r.name, r.site_name)
}
