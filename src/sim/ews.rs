//! The EWS endpoint: reads a SOAP request, checks its version and
//! impersonation header, applies injected faults, runs the operation on
//! the world and writes the response envelope.
//!
//! Requests are read with the wire types of `crate::ews` where they exist
//! (GetFolder, SyncFolderItems, GetItem, FindItem, CreateItem); the
//! operations resa's client does not model (DeleteItem, ResolveNames,
//! GetUserAvailability, GetRoomLists, GetRooms) are read from the element
//! tree and written with the same quick-xml writer.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::auth::Principal;
use super::faults::FaultKind;
use super::render::{self, ItemKey};
use super::state::{self, Account, FolderKind, ItemClass, MailboxInfo, MeetingInput, Reply as Answer, World};
use super::version::{server_version_info, unknown_element};
use super::{Shared, SimError};
use crate::ews::ServerVersion;
use crate::ews::error::ResponseCode;
use crate::ews::item::{Item, ItemKind, Shape};
use crate::ews::ops::create_item::{
    CreateItem, MessageDisposition, NewItem, ResponseObjectKind, SendMeetingInvitations,
};
use crate::ews::ops::find_item::{FindItem, FindItemResult};
use crate::ews::ops::get_folder::{Folder, Folders, GetFolder};
use crate::ews::ops::get_item::{GetItem, ItemRef, Items};
use crate::ews::ops::sync_folder_items::{Change, SyncFolderItems, SyncFolderItemsResult};
use crate::ews::soap::{self, Impersonation, MessageContent, RequestHeader, ResponseMessage, ResponseMessages};
use crate::ews::types::{FolderRef, ItemId, Mailbox};
use crate::ews::xml::{self, Element, NS_SOAP, NS_TYPES, Wire, XmlWriter};

/// Requests larger than this are refused, as IIS's default limits do.
const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
const NS_ERRORS: &str = "http://schemas.microsoft.com/exchange/services/2006/errors";

/// What the HTTP layer sends back.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    /// Close the connection halfway through the body.
    pub reset: bool,
    /// A streaming response: chunks sent as they come, `body` unused; an
    /// error cuts the connection.
    pub stream: Option<tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>>,
    /// A `Set-Cookie` header value (the affinity cookie of a grouped
    /// subscription).
    pub set_cookie: Option<String>,
}

/// The routing headers of a request, as Exchange's front end reads them.
#[derive(Debug, Clone, Default)]
pub struct Hints {
    /// X-AnchorMailbox.
    pub anchor: Option<String>,
    /// X-PreferServerAffinity: true.
    pub prefer_affinity: bool,
    /// The X-BackEndOverrideCookie value the request carried.
    pub backend_cookie: Option<String>,
}

/// The name of Exchange's affinity cookie.
pub const AFFINITY_COOKIE: &str = "X-BackEndOverrideCookie";

/// The back end a grouped subscription's anchor lives on, as the cookie
/// value names it.
fn backend_of(anchor: &str) -> String {
    format!("SIMBE01~{}", anchor.to_lowercase())
}

/// GetStreamingEvents takes at most this many subscriptions.
pub const MAX_STREAM_SUBSCRIPTIONS: usize = 200;

impl Reply {
    fn ok(body: Vec<u8>) -> Self {
        Self {
            status: 200,
            body,
            reset: false,
            stream: None,
            set_cookie: None,
        }
    }
}

/// A SOAP fault shaped like Exchange's (HTTP 500).
struct FaultSpec {
    code: ResponseCode,
    /// `faultcode`: `a:ErrorXxx` or `soap:Client`.
    fault_code: String,
    text: String,
    back_off: Option<Duration>,
    violation: Option<String>,
}

impl FaultSpec {
    fn new(code: ResponseCode, text: impl Into<String>) -> Self {
        Self {
            fault_code: format!("a:{}", code.as_str()),
            code,
            text: text.into(),
            back_off: None,
            violation: None,
        }
    }

    fn schema(violation: String) -> Self {
        Self {
            violation: Some(violation.clone()),
            ..Self::new(
                ResponseCode::ErrorSchemaValidation,
                format!("The request failed schema validation: {violation}"),
            )
        }
    }

    fn write(&self) -> Result<Vec<u8>, SimError> {
        let mut w = XmlWriter::new(ServerVersion::Exchange2016);
        w.decl()?;
        w.start("s:Envelope", &[("xmlns:s", NS_SOAP)])?;
        w.start("s:Body", &[])?;
        w.start("s:Fault", &[])?;
        w.text_elem_attrs("faultcode", &[("xmlns:a", NS_TYPES)], &self.fault_code)?;
        w.text_elem_attrs("faultstring", &[("xml:lang", "en-US")], &self.text)?;
        w.start("detail", &[])?;
        w.text_elem_attrs("e:ResponseCode", &[("xmlns:e", NS_ERRORS)], self.code.as_str())?;
        let message = if self.violation.is_some() {
            "The request failed schema validation."
        } else {
            &self.text
        };
        w.text_elem_attrs("e:Message", &[("xmlns:e", NS_ERRORS)], message)?;
        if self.back_off.is_some() || self.violation.is_some() {
            w.start("t:MessageXml", &[("xmlns:t", NS_TYPES)])?;
            if let Some(b) = self.back_off {
                w.text_elem_attrs(
                    "t:Value",
                    &[("Name", "BackOffMilliseconds")],
                    &b.as_millis().to_string(),
                )?;
            }
            if let Some(v) = &self.violation {
                w.text_elem("t:LineNumber", "1")?;
                w.text_elem("t:LinePosition", "1")?;
                w.text_elem("t:Violation", v)?;
            }
            w.end("t:MessageXml")?;
        }
        w.end("detail")?;
        w.end("s:Fault")?;
        w.end("s:Body")?;
        w.end("s:Envelope")?;
        Ok(w.into_bytes())
    }

    fn reply(&self) -> Reply {
        match self.write() {
            Ok(body) => Reply {
                status: 500,
                body,
                reset: false,
                stream: None,
                set_cookie: None,
            },
            Err(_) => bare(500),
        }
    }
}

fn bare(status: u16) -> Reply {
    Reply {
        status,
        body: Vec::new(),
        reset: false,
        stream: None,
        set_cookie: None,
    }
}

/// Everything a handler needs to know about the caller.
struct Ctx<'a> {
    /// The version the request asked for (never newer than the server).
    version: ServerVersion,
    /// The mailbox the request acts as: impersonated, or the account's own.
    acting: Option<String>,
    account: &'a Account,
    now: DateTime<Utc>,
    time_zone_context: Option<String>,
    shared: &'a Shared,
    principal: &'a Principal,
    hints: &'a Hints,
}

/// Answers one EWS POST body from an authenticated principal.
pub async fn handle(shared: &std::sync::Arc<Shared>, principal: &Principal, hints: &Hints, body: &[u8]) -> Reply {
    let env = match soap::read_envelope(body, MAX_REQUEST_BYTES) {
        Ok(e) => e,
        Err(e) => return FaultSpec::schema(e.to_string()).reply(),
    };
    let header = match RequestHeader::read(env.header.as_ref()) {
        Ok(h) => h,
        Err(e) => return FaultSpec::schema(e.to_string()).reply(),
    };
    if header.version > shared.version {
        return FaultSpec::new(
            ResponseCode::ErrorInvalidServerVersion,
            "The specified server version is invalid.",
        )
        .reply();
    }
    // Only the body is validated: like any ASMX service, Exchange ignores
    // SOAP headers it does not know (exchangelib sends TimeZoneContext to
    // 2007 servers, which work).
    if let Some((name, since)) = unknown_element(&env.payload, shared.version) {
        return FaultSpec::schema(format!(
            "The element '{name}' is not valid in this schema version (it arrived with {since})."
        ))
        .reply();
    }
    let Some(account) = shared.read(|w| w.accounts.get(principal.account).cloned()) else {
        return bare(401);
    };
    let acting = match &header.impersonation {
        None => account.mailbox.clone(),
        Some(imp) => {
            if !account.impersonation {
                return FaultSpec::new(
                    ResponseCode::ErrorImpersonateUserDenied,
                    "The account does not have permission to impersonate the requested user.",
                )
                .reply();
            }
            let address = match imp {
                Impersonation::PrimarySmtpAddress(a) | Impersonation::PrincipalName(a) => a.clone(),
                Impersonation::Sid(_) => {
                    return FaultSpec::new(
                        ResponseCode::ErrorImpersonationFailed,
                        "Impersonation by SID is not supported by the simulator.",
                    )
                    .reply();
                }
            };
            match shared.read(|w| w.resolve(&address).map(|i| i.smtp.clone())) {
                Some(smtp) => Some(smtp),
                None => {
                    return FaultSpec::new(
                        ResponseCode::ErrorNonExistentMailbox,
                        format!("The SMTP address has no mailbox associated with it. {address}"),
                    )
                    .reply();
                }
            }
        }
    };
    let operation = env.payload.name.clone();
    shared.count_call(&operation);
    let now = shared.clock.now();
    let fired = shared
        .faults
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take(acting.as_deref(), &operation, now);
    let mut reset = false;
    let mut bad_sync_state = false;
    for f in fired {
        match f {
            FaultKind::Latency { ms } => tokio::time::sleep(Duration::from_millis(ms)).await,
            FaultKind::ServerBusy { back_off_ms } => {
                let mut spec = FaultSpec::new(
                    ResponseCode::ErrorServerBusy,
                    "The server cannot service this request right now. Try again later.",
                );
                spec.back_off = Some(Duration::from_millis(back_off_ms));
                return spec.reply();
            }
            FaultKind::Http { status } => return bare(status),
            FaultKind::Outage { .. } => return bare(503),
            FaultKind::Reset => reset = true,
            FaultKind::InvalidSyncState => bad_sync_state = true,
        }
    }
    let ctx = Ctx {
        version: header.version,
        acting,
        account: &account,
        now,
        time_zone_context: header.time_zone_context.clone(),
        shared,
        principal,
        hints,
    };
    if operation == "GetStreamingEvents" {
        return match get_streaming_events(&ctx, shared, &env.payload) {
            Ok(r) => r,
            Err(Failure::Fault(spec)) => spec.reply(),
            Err(Failure::Sim(e)) => FaultSpec::new(ResponseCode::ErrorInternalServerError, e.to_string()).reply(),
        };
    }
    let result = dispatch(&ctx, &env.payload, bad_sync_state);
    let mut reply = match result {
        Ok(body) => {
            let mut r = Reply::ok(body);
            // A grouped subscription learns which back end holds it.
            if operation == "Subscribe" && hints.prefer_affinity {
                r.set_cookie = hints
                    .anchor
                    .as_deref()
                    .map(|a| format!("{AFFINITY_COOKIE}={}; path=/; HttpOnly", backend_of(a)));
            }
            r
        }
        Err(Failure::Fault(spec)) => spec.reply(),
        Err(Failure::Sim(e)) => {
            tracing::warn!(sim.operation = %operation, error = %e, "sim.ews_internal_error");
            FaultSpec::new(ResponseCode::ErrorInternalServerError, e.to_string()).reply()
        }
    };
    reply.reset = reset;
    reply
}

enum Failure {
    Fault(FaultSpec),
    Sim(SimError),
}

impl From<SimError> for Failure {
    fn from(e: SimError) -> Self {
        Failure::Sim(e)
    }
}

impl From<crate::ews::EwsError> for Failure {
    fn from(e: crate::ews::EwsError) -> Self {
        // A request our wire types cannot read is, to the client, a request
        // that fails the schema.
        Failure::Fault(FaultSpec::schema(e.to_string()))
    }
}

fn respond<R: Wire>(ctx: &Ctx<'_>, resp: &R) -> Result<Vec<u8>, Failure> {
    let info = server_version_info(ctx.shared.version);
    Ok(soap::write_response(resp, Some(&info), ctx.version)?)
}

fn dispatch(ctx: &Ctx<'_>, payload: &Element, bad_sync_state: bool) -> Result<Vec<u8>, Failure> {
    match payload.name.as_str() {
        "GetFolder" => get_folder(ctx, GetFolder::read(payload)?),
        "SyncFolderItems" => sync_folder_items(ctx, SyncFolderItems::read(payload)?, bad_sync_state),
        "GetItem" => get_item(ctx, GetItem::read(payload)?),
        "FindItem" => {
            if payload.child("CalendarView").is_none() {
                return Err(Failure::Fault(FaultSpec::new(
                    ResponseCode::ErrorInvalidOperation,
                    "The simulator answers FindItem with a CalendarView only.",
                )));
            }
            find_item(ctx, FindItem::read(payload)?)
        }
        "CreateItem" => create_item(ctx, CreateItem::read(payload)?),
        "DeleteItem" => delete_item(ctx, payload),
        "ResolveNames" => resolve_names(ctx, payload),
        "GetUserAvailabilityRequest" => get_user_availability(ctx, payload),
        "GetRoomLists" => get_room_lists(ctx),
        "GetRooms" => get_rooms(ctx, payload),
        "Subscribe" => subscribe(ctx, payload),
        "GetEvents" => get_events(ctx, payload),
        "Unsubscribe" => unsubscribe(ctx, payload),
        other => Err(Failure::Fault(FaultSpec::new(
            ResponseCode::ErrorInvalidRequest,
            format!("The simulator does not implement {other}."),
        ))),
    }
}

fn error_msg<C: MessageContent>(code: ResponseCode, text: impl Into<String>) -> ResponseMessage<C> {
    ResponseMessage::error(code, text)
}

fn sim_error<C: MessageContent>(e: &SimError) -> ResponseMessage<C> {
    let code = match e {
        SimError::NoMailbox(_) => ResponseCode::ErrorNonExistentMailbox,
        SimError::NoItem(_) => ResponseCode::ErrorItemNotFound,
        SimError::AccessDenied(_) => ResponseCode::ErrorAccessDenied,
        SimError::BadSyncState => ResponseCode::ErrorInvalidSyncStateData,
        SimError::Cancelled(_) => ResponseCode::ErrorCalendarIsCancelledForAccept,
        SimError::Invalid(_) | SimError::Conflict(_) => ResponseCode::ErrorInvalidRequest,
        _ => ResponseCode::ErrorInternalServerError,
    };
    error_msg(code, e.to_string())
}

/// Checks that the caller may open `smtp`: only its own (or impersonated)
/// mailbox, as with no delegate or FullAccess rights granted.
fn may_open(ctx: &Ctx<'_>, smtp: &str) -> Result<(), SimError> {
    let smtp = state::norm(smtp);
    let exists = ctx.shared.read(|w| w.mailboxes.contains_key(&smtp));
    if !exists {
        return Err(SimError::NoMailbox(smtp));
    }
    match &ctx.acting {
        Some(me) if *me == smtp => Ok(()),
        _ => Err(SimError::AccessDenied(format!(
            "{} has no rights on {smtp}",
            ctx.acting.as_deref().unwrap_or(&ctx.account.login)
        ))),
    }
}

fn acting(ctx: &Ctx<'_>) -> Result<String, SimError> {
    ctx.acting
        .clone()
        .ok_or_else(|| SimError::NoMailbox(format!("the account {} has no mailbox", ctx.account.login)))
}

/// A folder reference as (mailbox, folder), with the access check.
fn folder_of(ctx: &Ctx<'_>, f: &FolderRef) -> Result<(String, FolderKind), SimError> {
    let (smtp, kind) = match f {
        FolderRef::Distinguished { id, mailbox } => {
            let smtp = match mailbox {
                Some(m) => ctx
                    .shared
                    .read(|w| w.resolve(m).map(|i| i.smtp.clone()))
                    .ok_or_else(|| SimError::NoMailbox(m.clone()))?,
                None => acting(ctx)?,
            };
            let kind =
                FolderKind::from_distinguished(id.as_str()).ok_or_else(|| SimError::NoItem(format!("folder {id}")))?;
            (smtp, kind)
        }
        FolderRef::Id(id) => {
            render::parse_folder_id(&id.id).ok_or_else(|| SimError::NoItem(format!("folder {}", id.id)))?
        }
    };
    may_open(ctx, &smtp)?;
    Ok((smtp, kind))
}

fn folder_element(world: &World, smtp: &str, kind: FolderKind) -> Folder {
    let items: Vec<&state::StoredItem> = world
        .mailbox(smtp)
        .map(|m| m.items.values().filter(|i| i.folder == kind).collect())
        .unwrap_or_default();
    Folder {
        element: if kind == FolderKind::Calendar {
            "CalendarFolder".into()
        } else {
            "Folder".into()
        },
        folder_id: Some(render::folder_id(smtp, kind)),
        parent_folder_id: (kind != FolderKind::Root).then(|| render::folder_id(smtp, FolderKind::Root)),
        folder_class: match kind {
            FolderKind::Root => None,
            FolderKind::Calendar => Some("IPF.Appointment".into()),
            _ => Some("IPF.Note".into()),
        },
        display_name: Some(kind.display_name().into()),
        total_count: Some(u32::try_from(items.len()).unwrap_or(u32::MAX)),
        child_folder_count: Some(if kind == FolderKind::Root { 4 } else { 0 }),
        unread_count: Some(u32::try_from(items.iter().filter(|i| !i.is_read).count()).unwrap_or(u32::MAX)),
    }
}

fn get_folder(ctx: &Ctx<'_>, req: GetFolder) -> Result<Vec<u8>, Failure> {
    let mut messages = Vec::new();
    for f in &req.folder_ids {
        messages.push(match folder_of(ctx, f) {
            Ok((smtp, kind)) => ResponseMessage::success(Folders {
                folders: vec![ctx.shared.read(|w| folder_element(w, &smtp, kind))],
            }),
            Err(SimError::NoItem(t)) => error_msg(ResponseCode::ErrorFolderNotFound, t),
            Err(e) => sim_error(&e),
        });
    }
    respond(
        ctx,
        &crate::ews::ops::get_folder::GetFolderResponse(ResponseMessages { messages }),
    )
}

fn render_no(ctx: &Ctx<'_>, w: &World, smtp: &str, no: u64, shape: &Shape) -> Option<Item> {
    let mb = w.mailbox(smtp).ok()?;
    let stored = mb.items.get(&no)?;
    Some(render::item(w, &mb.info, stored, None, shape, ctx.version))
}

fn sync_folder_items(ctx: &Ctx<'_>, req: SyncFolderItems, bad_sync_state: bool) -> Result<Vec<u8>, Failure> {
    let message = (|| -> Result<SyncFolderItemsResult, SimError> {
        let (smtp, kind) = folder_of(ctx, &req.folder)?;
        if bad_sync_state {
            return Err(SimError::BadSyncState);
        }
        if !(1..=512).contains(&req.max_changes_returned) {
            return Err(SimError::Invalid("MaxChangesReturned must be 1 to 512".into()));
        }
        ctx.shared.read(|w| {
            let since = match &req.sync_state {
                None => 0,
                Some(s) => render::parse_sync_state(s, w.epoch, &smtp, kind).ok_or(SimError::BadSyncState)?,
            };
            let r = w.sync(&smtp, kind, since, req.max_changes_returned as usize)?;
            let mut changes = Vec::new();
            for c in r.changes {
                changes.push(match c {
                    state::SyncChange::Create(no) => match render_no(ctx, w, &smtp, no, &req.item_shape) {
                        Some(i) => Change::Create(i),
                        None => continue,
                    },
                    state::SyncChange::Update(no) => match render_no(ctx, w, &smtp, no, &req.item_shape) {
                        Some(i) => Change::Update(i),
                        None => continue,
                    },
                    state::SyncChange::Delete(no) => Change::Delete(ItemId::new(render::item_id(&smtp, no, None))),
                });
            }
            Ok(SyncFolderItemsResult {
                sync_state: render::sync_state(w.epoch, &smtp, kind, r.seq),
                includes_last_item_in_range: r.includes_last,
                changes,
            })
        })
    })();
    let message = match message {
        Ok(c) => ResponseMessage::success(c),
        Err(e) => sim_error(&e),
    };
    respond(
        ctx,
        &crate::ews::ops::sync_folder_items::SyncFolderItemsResponse(ResponseMessages {
            messages: vec![message],
        }),
    )
}

/// Far enough ahead to find any occurrence a client can name by index.
fn horizon(start: DateTime<Utc>) -> DateTime<Utc> {
    start + chrono::Duration::days(366 * 10)
}

fn get_one(ctx: &Ctx<'_>, r: &ItemRef, shape: &Shape) -> Result<Item, SimError> {
    let (key, occurrence_index) = match r {
        ItemRef::Id(id) => {
            let k = render::parse_item_id(&id.id).ok_or_else(|| SimError::NoItem(id.id.clone()))?;
            let occ = k.occurrence;
            (k, occ)
        }
        ItemRef::Occurrence {
            recurring_master_id,
            instance_index,
        } => {
            let k = render::parse_item_id(recurring_master_id)
                .ok_or_else(|| SimError::NoItem(recurring_master_id.clone()))?;
            (k, Some(*instance_index))
        }
        ItemRef::RecurringMaster { occurrence_id } => {
            let k = render::parse_item_id(occurrence_id).ok_or_else(|| SimError::NoItem(occurrence_id.clone()))?;
            (ItemKey { occurrence: None, ..k }, None)
        }
    };
    may_open(ctx, &key.smtp)?;
    ctx.shared.read(|w| {
        let mb = w.mailbox(&key.smtp)?;
        let stored = mb
            .items
            .get(&key.no)
            .ok_or_else(|| SimError::NoItem(format!("item {}", key.no)))?;
        let occurrence = match (occurrence_index, &stored.meeting) {
            (Some(i), Some(m)) => {
                let all = m.occurrences(m.start, horizon(m.start))?;
                Some(
                    all.into_iter()
                        .find(|o| o.index + 1 == i)
                        .ok_or_else(|| SimError::NoItem(format!("occurrence {i}")))?,
                )
            }
            (Some(_), None) => return Err(SimError::NoItem("occurrence of a non-meeting".into())),
            (None, _) => None,
        };
        Ok(render::item(
            w,
            &mb.info,
            stored,
            occurrence.as_ref(),
            shape,
            ctx.version,
        ))
    })
}

fn get_item(ctx: &Ctx<'_>, req: GetItem) -> Result<Vec<u8>, Failure> {
    let messages = req
        .item_ids
        .iter()
        .map(|r| match get_one(ctx, r, &req.item_shape) {
            Ok(item) => ResponseMessage::success(Items { items: vec![item] }),
            Err(e) => sim_error(&e),
        })
        .collect();
    respond(
        ctx,
        &crate::ews::ops::get_item::GetItemResponse(ResponseMessages { messages }),
    )
}

fn find_item(ctx: &Ctx<'_>, req: FindItem) -> Result<Vec<u8>, Failure> {
    let view = &req.calendar_view;
    let mut messages = Vec::new();
    for f in &req.parent_folder_ids {
        let result = folder_of(ctx, f).and_then(|(smtp, kind)| {
            ctx.shared.read(|w| {
                let mb = w.mailbox(&smtp)?;
                let mut found: Vec<(DateTime<Utc>, Item)> = Vec::new();
                for stored in mb.items.values().filter(|i| i.folder == kind) {
                    let Some(m) = &stored.meeting else { continue };
                    for o in m.occurrences(view.start, view.end)? {
                        let occ = m.recurrence.is_some().then_some(&o);
                        found.push((
                            o.start,
                            render::item(w, &mb.info, stored, occ, &req.item_shape, ctx.version),
                        ));
                    }
                }
                found.sort_by_key(|(t, _)| *t);
                let total = found.len();
                let max = view.max_entries_returned.map_or(usize::MAX, |m| m as usize);
                let items: Vec<Item> = found.into_iter().take(max).map(|(_, i)| i).collect();
                Ok(FindItemResult {
                    total_items_in_view: u32::try_from(items.len()).unwrap_or(u32::MAX),
                    includes_last_item_in_range: items.len() == total,
                    items,
                })
            })
        });
        messages.push(match result {
            Ok(r) => ResponseMessage::success(r),
            Err(e) => sim_error(&e),
        });
    }
    respond(
        ctx,
        &crate::ews::ops::find_item::FindItemResponse(ResponseMessages { messages }),
    )
}

/// An address from an item, as an SMTP address of this organisation when
/// it is one (legacy DNs resolved), verbatim otherwise.
fn address(w: &World, m: &Mailbox) -> Option<String> {
    let a = m.email_address.as_deref()?;
    Some(w.resolve(a).map(|i| i.smtp.clone()).unwrap_or_else(|| state::norm(a)))
}

fn meeting_input(ctx: &Ctx<'_>, item: &Item) -> Result<MeetingInput, SimError> {
    let start = item
        .start
        .ok_or_else(|| SimError::Invalid("a calendar item needs a Start".into()))?;
    let end = item.end.unwrap_or(start + state::default_duration());
    let tz = item
        .start_time_zone
        .as_ref()
        .and_then(|t| t.iana())
        .or_else(|| item.meeting_time_zone.as_ref().and_then(|t| t.iana()))
        .or_else(|| {
            ctx.time_zone_context
                .as_deref()
                .and_then(crate::ews::types::windows_to_iana)
        })
        .unwrap_or(chrono_tz::Europe::Paris);
    let recurrence = match &item.recurrence {
        None => None,
        Some(r) => Some(super::control::rrule_of(r, start, end, tz)?),
    };
    ctx.shared.read(|w| {
        let list = |v: &[crate::ews::types::Attendee]| v.iter().filter_map(|a| address(w, &a.mailbox)).collect();
        Ok(MeetingInput {
            uid: item.uid.clone(),
            subject: item.subject.clone().unwrap_or_default(),
            body: item.body.as_ref().map(|b| b.content.clone()).unwrap_or_default(),
            location: item.location.clone(),
            start,
            end,
            time_zone: tz.name().to_owned(),
            required: list(&item.required_attendees),
            optional: list(&item.optional_attendees),
            resources: list(&item.resources),
            recurrence,
        })
    })
}

fn id_only(kind: ItemKind, smtp: &str, no: u64, w: &World) -> Item {
    let mut i = Item::new(kind);
    let ck = w
        .mailbox(smtp)
        .ok()
        .and_then(|m| m.items.get(&no))
        .map(render::change_key);
    i.item_id = Some(ItemId {
        id: render::item_id(smtp, no, None),
        change_key: ck,
    });
    i
}

fn create_one(ctx: &Ctx<'_>, req: &CreateItem, new: &NewItem) -> Result<Items, SimError> {
    let me = acting(ctx)?;
    match new {
        NewItem::Item(item) if item.kind == ItemKind::CalendarItem => {
            let input = meeting_input(ctx, item)?;
            let send = matches!(
                req.send_meeting_invitations,
                Some(SendMeetingInvitations::SendToAllAndSaveCopy | SendMeetingInvitations::SendOnlyToAll)
            );
            let has_attendees = !(input.required.is_empty() && input.optional.is_empty() && input.resources.is_empty());
            ctx.shared.mutate(|w| {
                let no = if send && has_attendees {
                    let uid = w.invite(&me, input, ctx.now)?;
                    w.mailbox(&me)?
                        .calendar_item(&uid)
                        .map(|i| i.no)
                        .ok_or_else(|| SimError::NoItem(uid.clone()))?
                } else {
                    w.save_appointment(&me, input, ctx.now)?
                };
                Ok(Items {
                    items: vec![id_only(ItemKind::CalendarItem, &me, no, w)],
                })
            })
        }
        NewItem::Item(item) if item.kind == ItemKind::Message => {
            if req.message_disposition == Some(MessageDisposition::SaveOnly) {
                return Err(SimError::Invalid("the simulator has no Drafts folder".into()));
            }
            ctx.shared.mutate(|w| {
                let to: Vec<String> = item.to_recipients.iter().filter_map(|m| address(w, m)).collect();
                let body = item.body.as_ref().map(|b| b.content.clone()).unwrap_or_default();
                // Voting buttons, as Outlook would show them.
                let voting = item
                    .extended_properties
                    .iter()
                    .find(|p| p.uri.same_property(&crate::ews::types::ExtendedFieldUri::verb_stream()))
                    .and_then(|p| p.value.as_deref())
                    .and_then(|v| {
                        use base64::Engine;
                        base64::engine::general_purpose::STANDARD.decode(v.trim()).ok()
                    })
                    .and_then(|bytes| crate::ews::voting::labels(&bytes))
                    .unwrap_or_default();
                w.send_voting_message(
                    &me,
                    &to,
                    item.subject.as_deref().unwrap_or_default(),
                    &body,
                    &voting,
                    ctx.now,
                )?;
                Ok(Items::default())
            })
        }
        NewItem::Item(item) => Err(SimError::Invalid(format!(
            "the simulator cannot create a {}",
            item.kind.element_name()
        ))),
        NewItem::Response(r) => {
            let key = render::parse_item_id(&r.reference_item_id.id)
                .ok_or_else(|| SimError::NoItem(r.reference_item_id.id.clone()))?;
            may_open(ctx, &key.smtp)?;
            let body = r.body.as_ref().map(|b| b.content.as_str());
            ctx.shared.mutate(|w| {
                let answer = match r.kind {
                    ResponseObjectKind::Accept => Answer::Accept,
                    ResponseObjectKind::TentativelyAccept => Answer::Tentative,
                    ResponseObjectKind::Decline => Answer::Decline,
                    ResponseObjectKind::CancelCalendarItem => {
                        let uid = w
                            .mailbox(&key.smtp)?
                            .items
                            .get(&key.no)
                            .and_then(|i| i.meeting.as_ref())
                            .map(|m| m.uid.clone())
                            .ok_or_else(|| SimError::NoItem(r.reference_item_id.id.clone()))?;
                        w.cancel(&key.smtp, &uid, ctx.now)?;
                        return Ok(Items::default());
                    }
                    ResponseObjectKind::RemoveItem => {
                        let uid = w
                            .mailbox(&key.smtp)?
                            .items
                            .get(&key.no)
                            .filter(|i| i.class == ItemClass::MeetingCancellation)
                            .and_then(|i| i.meeting.as_ref())
                            .map(|m| m.uid.clone())
                            .ok_or_else(|| SimError::Invalid("RemoveItem needs a meeting cancellation".into()))?;
                        if let Some(no) = w.mailbox(&key.smtp)?.calendar_item(&uid).map(|i| i.no) {
                            w.delete_item(&key.smtp, no, false, ctx.now)?;
                        }
                        w.delete_item(&key.smtp, key.no, false, ctx.now)?;
                        return Ok(Items::default());
                    }
                };
                let uid = w
                    .mailbox(&key.smtp)?
                    .items
                    .get(&key.no)
                    .and_then(|i| i.meeting.as_ref())
                    .map(|m| m.uid.clone())
                    .ok_or_else(|| SimError::NoItem(r.reference_item_id.id.clone()))?;
                w.reply(&key.smtp, key.no, answer, body, ctx.now)?;
                let cal = w.mailbox(&key.smtp)?.calendar_item(&uid).map(|i| i.no);
                Ok(Items {
                    items: cal
                        .map(|no| id_only(ItemKind::CalendarItem, &key.smtp, no, w))
                        .into_iter()
                        .collect(),
                })
            })
        }
    }
}

fn create_item(ctx: &Ctx<'_>, req: CreateItem) -> Result<Vec<u8>, Failure> {
    let messages = req
        .items
        .iter()
        .map(|new| match create_one(ctx, &req, new) {
            Ok(items) => ResponseMessage::success(items),
            Err(SimError::Cancelled(uid)) => error_msg(
                ResponseCode::ErrorCalendarIsCancelledForAccept,
                format!("The meeting {uid} is cancelled."),
            ),
            Err(e) => sim_error(&e),
        })
        .collect();
    respond(
        ctx,
        &crate::ews::ops::create_item::CreateItemResponse(ResponseMessages { messages }),
    )
}

/// Writes a `ResponseMessages` payload whose messages carry no content.
fn status_only(
    ctx: &Ctx<'_>,
    payload: &str,
    message: &str,
    messages: Vec<ResponseMessage<()>>,
) -> Result<Vec<u8>, Failure> {
    struct Payload<'a>(&'a str, &'a str, ResponseMessages<()>);
    impl Wire for Payload<'_> {
        fn write(&self, w: &mut XmlWriter) -> Result<(), crate::ews::EwsError> {
            self.2.write_payload(w, self.0, self.1)
        }
        fn read(_el: &Element) -> Result<Self, crate::ews::EwsError> {
            Err(crate::ews::EwsError::malformed("write-only payload"))
        }
    }
    respond(ctx, &Payload(payload, message, ResponseMessages { messages }))
}

fn delete_item(ctx: &Ctx<'_>, payload: &Element) -> Result<Vec<u8>, Failure> {
    let cancel = matches!(
        payload.attr("SendMeetingCancellations"),
        Some("SendOnlyToAll" | "SendToAllAndSaveCopy")
    );
    let ids = ItemRef::read_list(payload.req_child("ItemIds")?)?;
    let mut messages = Vec::new();
    for r in ids {
        let result = (|| -> Result<(), SimError> {
            let ItemRef::Id(id) = r else {
                return Err(SimError::Invalid("the simulator deletes whole items only".into()));
            };
            let key = render::parse_item_id(&id.id).ok_or_else(|| SimError::NoItem(id.id.clone()))?;
            may_open(ctx, &key.smtp)?;
            ctx.shared.mutate(|w| w.delete_item(&key.smtp, key.no, cancel, ctx.now))
        })();
        messages.push(match result {
            Ok(()) => ResponseMessage::success(()),
            Err(e) => sim_error(&e),
        });
    }
    status_only(ctx, "m:DeleteItemResponse", "m:DeleteItemResponseMessage", messages)
}

fn write_mailbox(w: &mut XmlWriter, name: &str, info: &MailboxInfo, mailbox_type: &str) -> Result<(), SimError> {
    w.start(name, &[])?;
    w.text_elem("t:Name", &info.name)?;
    w.text_elem("t:EmailAddress", &info.smtp)?;
    w.text_elem("t:RoutingType", "SMTP")?;
    w.text_elem("t:MailboxType", mailbox_type)?;
    w.end(name)?;
    Ok(())
}

fn envelope(ctx: &Ctx<'_>, body: impl FnOnce(&mut XmlWriter) -> Result<(), SimError>) -> Result<Vec<u8>, Failure> {
    let mut w = XmlWriter::new(ctx.version);
    w.decl().map_err(SimError::from)?;
    w.start("s:Envelope", &[("xmlns:s", NS_SOAP)]).map_err(SimError::from)?;
    w.start("s:Header", &[]).map_err(SimError::from)?;
    server_version_info(ctx.shared.version)
        .write(&mut w)
        .map_err(SimError::from)?;
    w.end("s:Header").map_err(SimError::from)?;
    w.start("s:Body", &[]).map_err(SimError::from)?;
    body(&mut w)?;
    w.end("s:Body").map_err(SimError::from)?;
    w.end("s:Envelope").map_err(SimError::from)?;
    Ok(w.into_bytes())
}

fn resolve_names(ctx: &Ctx<'_>, payload: &Element) -> Result<Vec<u8>, Failure> {
    let entry = payload.child_text("UnresolvedEntry").unwrap_or_default().to_owned();
    let full = payload
        .attr("ReturnFullContactData")
        .is_some_and(|v| xml::parse_bool(v).unwrap_or(false));
    let found: Vec<MailboxInfo> = ctx.shared.read(|w| {
        if let Some(i) = w.resolve(&entry) {
            return vec![i.clone()];
        }
        // Ambiguous name resolution: a prefix of the name or the alias.
        let needle = entry.to_lowercase();
        w.mailboxes
            .values()
            .map(|m| &m.info)
            .filter(|i| {
                !needle.is_empty() && (i.name.to_lowercase().starts_with(&needle) || i.smtp.starts_with(&needle))
            })
            .cloned()
            .collect()
    });
    envelope(ctx, |w| {
        w.start_payload("m:ResolveNamesResponse", &[])?;
        w.start("m:ResponseMessages", &[])?;
        let (class, code) = match found.len() {
            0 => ("Error", "ErrorNameResolutionNoResults"),
            1 => ("Success", "NoError"),
            _ => ("Warning", "ErrorNameResolutionMultipleResults"),
        };
        w.start("m:ResolveNamesResponseMessage", &[("ResponseClass", class)])?;
        if found.is_empty() {
            w.text_elem("m:MessageText", "No results were found.")?;
        }
        w.text_elem("m:ResponseCode", code)?;
        w.text_elem("m:DescriptiveLinkKey", "0")?;
        if !found.is_empty() {
            let n = found.len().to_string();
            w.start(
                "m:ResolutionSet",
                &[("TotalItemsInView", &n), ("IncludesLastItemInRange", "true")],
            )?;
            for info in &found {
                w.start("t:Resolution", &[])?;
                write_mailbox(w, "t:Mailbox", info, "Mailbox")?;
                if full {
                    w.start("t:Contact", &[])?;
                    w.text_elem("t:DisplayName", &info.name)?;
                    w.start("t:EmailAddresses", &[])?;
                    w.text_elem_attrs("t:Entry", &[("Key", "EmailAddress1")], &format!("SMTP:{}", info.smtp))?;
                    w.text_elem_attrs(
                        "t:Entry",
                        &[("Key", "EmailAddress2")],
                        &format!("X500:{}", info.legacy_dn),
                    )?;
                    w.end("t:EmailAddresses")?;
                    w.text_elem("t:ContactSource", "ActiveDirectory")?;
                    w.end("t:Contact")?;
                }
                w.end("t:Resolution")?;
            }
            w.end("m:ResolutionSet")?;
        }
        w.end("m:ResolveNamesResponseMessage")?;
        w.end("m:ResponseMessages")?;
        w.end("m:ResolveNamesResponse")?;
        Ok(())
    })
}

fn get_room_lists(ctx: &Ctx<'_>) -> Result<Vec<u8>, Failure> {
    let lists = ctx.shared.read(|w| w.room_lists.clone());
    envelope(ctx, |w| {
        w.start_payload("m:GetRoomListsResponse", &[("ResponseClass", "Success")])?;
        w.text_elem("m:ResponseCode", "NoError")?;
        w.start("m:RoomLists", &[])?;
        for l in &lists {
            let info = MailboxInfo {
                smtp: l.smtp.clone(),
                name: l.name.clone(),
                kind: state::MailboxKind::User,
                legacy_dn: String::new(),
                routing: state::Routing::Smtp,
            };
            write_mailbox(w, "t:Address", &info, "PublicDL")?;
        }
        w.end("m:RoomLists")?;
        w.end("m:GetRoomListsResponse")?;
        Ok(())
    })
}

fn get_rooms(ctx: &Ctx<'_>, payload: &Element) -> Result<Vec<u8>, Failure> {
    let list = payload
        .child("RoomList")
        .and_then(|l| l.child_text("EmailAddress"))
        .map(state::norm)
        .unwrap_or_default();
    let rooms: Option<Vec<MailboxInfo>> = ctx.shared.read(|w| {
        let l = w.room_lists.iter().find(|l| l.smtp == list)?;
        Some(l.rooms.iter().filter_map(|r| w.resolve(r).cloned()).collect())
    });
    envelope(ctx, |w| {
        match &rooms {
            Some(rooms) => {
                w.start_payload("m:GetRoomsResponse", &[("ResponseClass", "Success")])?;
                w.text_elem("m:ResponseCode", "NoError")?;
                w.start("m:Rooms", &[])?;
                for r in rooms {
                    w.start("t:Room", &[])?;
                    write_mailbox(w, "t:Id", r, "Mailbox")?;
                    w.end("t:Room")?;
                }
                w.end("m:Rooms")?;
            }
            None => {
                w.start_payload("m:GetRoomsResponse", &[("ResponseClass", "Error")])?;
                w.text_elem("m:MessageText", "No room list with this address.")?;
                w.text_elem("m:ResponseCode", "ErrorNameResolutionNoResults")?;
                w.text_elem("m:DescriptiveLinkKey", "0")?;
            }
        }
        w.end("m:GetRoomsResponse")?;
        Ok(())
    })
}

/// GetUserAvailability with a FreeBusy or Detailed view. Times are written
/// in the requester's zone as its `Bias` gives it (daylight rules of the
/// request are not applied).
fn get_user_availability(ctx: &Ctx<'_>, payload: &Element) -> Result<Vec<u8>, Failure> {
    let bias_minutes: i64 = payload
        .child("TimeZone")
        .and_then(|t| t.child_text("Bias"))
        .and_then(|b| b.parse().ok())
        .unwrap_or(0);
    let options = payload.child("FreeBusyViewOptions");
    let window = options.and_then(|o| o.child("TimeWindow"));
    let parse = |n: &str| {
        window
            .and_then(|w| w.child_text(n))
            .map(xml::parse_datetime)
            .transpose()
    };
    let local_to_utc = |t: DateTime<Utc>| t + chrono::Duration::minutes(bias_minutes);
    let (Some(start), Some(end)) = (parse("StartTime")?, parse("EndTime")?) else {
        return Err(Failure::Fault(FaultSpec::schema(
            "TimeWindow needs StartTime and EndTime".into(),
        )));
    };
    let (start, end) = (local_to_utc(start), local_to_utc(end));
    let view = options
        .and_then(|o| o.child_text("RequestedView"))
        .unwrap_or("FreeBusy")
        .to_owned();
    let addresses: Vec<String> = payload
        .child("MailboxDataArray")
        .map(|a| {
            a.children_named("MailboxData")
                .filter_map(|d| {
                    d.child("Email")
                        .and_then(|e| e.child_text("Address"))
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    type Busy = Vec<(DateTime<Utc>, DateTime<Utc>, &'static str, String)>;
    let answers: Vec<Result<Busy, SimError>> = ctx.shared.read(|w| {
        addresses
            .iter()
            .map(|a| {
                let mb = w
                    .resolve(a)
                    .and_then(|i| w.mailbox(&i.smtp).ok())
                    .ok_or_else(|| SimError::NoMailbox(a.clone()))?;
                let mut out = Vec::new();
                for item in mb.items.values().filter(|i| i.folder == FolderKind::Calendar) {
                    let Some(m) = &item.meeting else { continue };
                    if m.cancelled {
                        continue;
                    }
                    let busy = match item.my_response {
                        Some(state::ResponseKind::Organizer | state::ResponseKind::Accept) => "Busy",
                        _ => "Tentative",
                    };
                    for o in m.occurrences(start, end)? {
                        out.push((o.start, o.end, busy, m.subject.clone()));
                    }
                }
                out.sort_by_key(|e| e.0);
                Ok(out)
            })
            .collect()
    });
    let to_local = |t: &DateTime<Utc>| {
        (*t - chrono::Duration::minutes(bias_minutes))
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string()
    };
    envelope(ctx, |w| {
        w.start_payload("m:GetUserAvailabilityResponse", &[])?;
        w.start("m:FreeBusyResponseArray", &[])?;
        for a in &answers {
            w.start("m:FreeBusyResponse", &[])?;
            match a {
                Err(e) => {
                    w.start("m:ResponseMessage", &[("ResponseClass", "Error")])?;
                    w.text_elem("m:MessageText", &e.to_string())?;
                    w.text_elem("m:ResponseCode", "ErrorMailRecipientNotFound")?;
                    w.text_elem("m:DescriptiveLinkKey", "0")?;
                    w.end("m:ResponseMessage")?;
                }
                Ok(events) => {
                    w.start("m:ResponseMessage", &[("ResponseClass", "Success")])?;
                    w.text_elem("m:ResponseCode", "NoError")?;
                    w.end("m:ResponseMessage")?;
                    w.start("m:FreeBusyView", &[])?;
                    w.text_elem(
                        "t:FreeBusyViewType",
                        if view == "Detailed" { "Detailed" } else { "FreeBusy" },
                    )?;
                    w.start("t:CalendarEventArray", &[])?;
                    for (s, e, busy, subject) in events {
                        w.start("t:CalendarEvent", &[])?;
                        w.text_elem("t:StartTime", &to_local(s))?;
                        w.text_elem("t:EndTime", &to_local(e))?;
                        w.text_elem("t:BusyType", busy)?;
                        if view == "Detailed" {
                            w.start("t:CalendarEventDetails", &[])?;
                            w.text_elem("t:Subject", subject)?;
                            w.text_elem("t:IsMeeting", "true")?;
                            w.text_elem("t:IsRecurring", "false")?;
                            w.text_elem("t:IsException", "false")?;
                            w.text_elem("t:IsReminderSet", "false")?;
                            w.text_elem("t:IsPrivate", "false")?;
                            w.end("t:CalendarEventDetails")?;
                        }
                        w.end("t:CalendarEvent")?;
                    }
                    w.end("t:CalendarEventArray")?;
                    w.end("m:FreeBusyView")?;
                }
            }
            w.end("m:FreeBusyResponse")?;
        }
        w.end("m:FreeBusyResponseArray")?;
        w.end("m:GetUserAvailabilityResponse")?;
        Ok(())
    })
}

/// The content of one response message, written after its status.
type Content<'a> = Box<dyn Fn(&mut XmlWriter) -> Result<(), SimError> + 'a>;
/// A response message: its content, or an error code and text.
type Message<'a> = Result<Content<'a>, (ResponseCode, String)>;

/// Writes a `ResponseMessages` payload whose messages each come from a
/// closure (operations without a wire type in `crate::ews`).
fn messages_payload(
    ctx: &Ctx<'_>,
    payload: &str,
    message: &str,
    results: Vec<Message<'_>>,
) -> Result<Vec<u8>, Failure> {
    envelope(ctx, |w| {
        w.start_payload(payload, &[])?;
        w.start("m:ResponseMessages", &[])?;
        for r in &results {
            match r {
                Ok(content) => {
                    w.start(message, &[("ResponseClass", "Success")])?;
                    w.text_elem("m:ResponseCode", "NoError")?;
                    content(w)?;
                }
                Err((code, text)) => {
                    w.start(message, &[("ResponseClass", "Error")])?;
                    w.text_elem("m:MessageText", text)?;
                    w.text_elem("m:ResponseCode", code.as_str())?;
                    w.text_elem("m:DescriptiveLinkKey", "0")?;
                }
            }
            w.end(message)?;
        }
        w.end("m:ResponseMessages")?;
        w.end(payload)?;
        Ok(())
    })
}

fn subscribe(ctx: &Ctx<'_>, payload: &Element) -> Result<Vec<u8>, Failure> {
    let (req, streaming) = match (
        payload.child("PullSubscriptionRequest"),
        payload.child("StreamingSubscriptionRequest"),
    ) {
        (Some(r), _) => (r, false),
        (None, Some(r)) => (r, true),
        (None, None) => {
            return Err(Failure::Fault(FaultSpec::new(
                ResponseCode::ErrorInvalidSubscriptionRequest,
                "The simulator supports pull and streaming subscriptions.",
            )));
        }
    };
    let result = (|| -> Result<(String, Option<String>), SimError> {
        let all = req
            .attr("SubscribeToAllFolders")
            .is_some_and(|v| xml::parse_bool(v).unwrap_or(false));
        let mut smtp = None;
        let mut folders = Vec::new();
        if all {
            smtp = Some(acting(ctx)?);
            folders.extend(FolderKind::ALL);
        }
        if let Some(list) = req.child("FolderIds") {
            for f in &list.children {
                let (s, k) = folder_of(ctx, &FolderRef::read(f).map_err(SimError::from)?)?;
                if smtp.as_ref().is_some_and(|x| *x != s) {
                    return Err(SimError::Invalid("a subscription covers one mailbox".into()));
                }
                smtp = Some(s);
                if !folders.contains(&k) {
                    folders.push(k);
                }
            }
        }
        let smtp = smtp.ok_or_else(|| SimError::Invalid("no folder to subscribe to".into()))?;
        let event_types = req
            .child("EventTypes")
            .map(|e| e.children_named("EventType").map(|t| t.text().to_owned()).collect())
            .unwrap_or_default();
        let epoch = ctx.shared.read(|w| w.epoch);
        let seqs: std::collections::BTreeMap<FolderKind, u64> = match req.child_text("Watermark") {
            Some(wm) if !streaming => super::notify::parse_watermark(wm, epoch).ok_or(SimError::BadSyncState)?,
            _ => ctx.shared.read(|w| {
                let mb = w.mailbox(&smtp)?;
                Ok::<_, SimError>(folders.iter().map(|f| (*f, mb.seq(*f))).collect())
            })?,
        };
        let watermark = (!streaming).then(|| super::notify::watermark(epoch, &seqs));
        let id = ctx
            .shared
            .subscriptions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(super::notify::Subscription {
                account: ctx.principal.account,
                smtp,
                folders,
                event_types,
                seqs,
                streaming,
                backend: (streaming && ctx.hints.prefer_affinity)
                    .then(|| ctx.hints.anchor.as_deref().map(backend_of))
                    .flatten(),
            });
        Ok((id, watermark))
    })();
    let msg: Message<'static> = match result {
        Ok((id, watermark)) => Ok(Box::new(move |w: &mut XmlWriter| {
            w.text_elem("m:SubscriptionId", &id)?;
            if let Some(wm) = &watermark {
                w.text_elem("m:Watermark", wm)?;
            }
            Ok(())
        })),
        Err(SimError::BadSyncState) => Err((ResponseCode::ErrorInvalidWatermark, "The watermark is invalid.".into())),
        Err(e) => {
            let m: ResponseMessage<()> = sim_error(&e);
            Err((m.code, e.to_string()))
        }
    };
    messages_payload(ctx, "m:SubscribeResponse", "m:SubscribeResponseMessage", vec![msg])
}

/// The subscription `id` if this account owns it and it is of that kind.
fn own_subscription(
    ctx: &Ctx<'_>,
    id: &str,
    streaming: bool,
) -> Result<super::notify::Subscription, (ResponseCode, String)> {
    let subs = ctx.shared.subscriptions.lock().unwrap_or_else(|e| e.into_inner());
    let sub = subs.subs.get(id).ok_or((
        ResponseCode::ErrorSubscriptionNotFound,
        format!("No subscription {id}."),
    ))?;
    if sub.account != ctx.principal.account {
        return Err((
            ResponseCode::ErrorSubscriptionAccessDenied,
            "The subscription belongs to another account.".into(),
        ));
    }
    if sub.streaming != streaming {
        return Err((
            ResponseCode::ErrorInvalidSubscription,
            "Wrong kind of subscription for this operation.".into(),
        ));
    }
    Ok(sub.clone())
}

fn get_events(ctx: &Ctx<'_>, payload: &Element) -> Result<Vec<u8>, Failure> {
    let id = payload.child_text("SubscriptionId").unwrap_or_default().to_owned();
    let given = payload.child_text("Watermark").unwrap_or_default().to_owned();
    let result = own_subscription(ctx, &id, false).and_then(|mut sub| {
        let epoch = ctx.shared.read(|w| w.epoch);
        sub.seqs = super::notify::parse_watermark(&given, epoch).ok_or((
            ResponseCode::ErrorInvalidWatermark,
            "The watermark is invalid.".to_owned(),
        ))?;
        let (events, seqs) = ctx
            .shared
            .read(|w| super::notify::events_since(w, &sub, ctx.now))
            .map_err(|e| (ResponseCode::ErrorReadEventsFailed, e.to_string()))?;
        if let Some(s) = ctx
            .shared
            .subscriptions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .subs
            .get_mut(&id)
        {
            s.seqs = seqs.clone();
        }
        Ok((events, super::notify::watermark(epoch, &seqs)))
    });
    let msg: Message<'static> = result.map(|(events, wm)| {
        let (id, given) = (id.clone(), given.clone());
        Box::new(move |w: &mut XmlWriter| {
            w.start("m:Notification", &[])?;
            w.text_elem("t:SubscriptionId", &id)?;
            w.text_elem("t:PreviousWatermark", &given)?;
            w.text_elem("t:MoreEvents", "false")?;
            super::notify::write_events(w, &events, Some(&wm))?;
            w.end("m:Notification")?;
            Ok(())
        }) as Content<'static>
    });
    messages_payload(ctx, "m:GetEventsResponse", "m:GetEventsResponseMessage", vec![msg])
}

fn unsubscribe(ctx: &Ctx<'_>, payload: &Element) -> Result<Vec<u8>, Failure> {
    let id = payload.child_text("SubscriptionId").unwrap_or_default().to_owned();
    let known = {
        let subs = ctx.shared.subscriptions.lock().unwrap_or_else(|e| e.into_inner());
        subs.subs.get(&id).map(|s| s.account)
    };
    let msg: Message<'static> = match known {
        None => Err((
            ResponseCode::ErrorSubscriptionNotFound,
            format!("No subscription {id}."),
        )),
        Some(a) if a != ctx.principal.account => Err((
            ResponseCode::ErrorSubscriptionAccessDenied,
            "The subscription belongs to another account.".into(),
        )),
        Some(_) => {
            ctx.shared
                .subscriptions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .subs
                .remove(&id);
            Ok(Box::new(|_: &mut XmlWriter| Ok(())))
        }
    };
    messages_payload(ctx, "m:UnsubscribeResponse", "m:UnsubscribeResponseMessage", vec![msg])
}

/// GetStreamingEvents: checks the subscriptions, then answers with a body
/// that a task feeds: an envelope at once, one per batch of events, a
/// heartbeat when idle, and a final `Closed` envelope after
/// ConnectionTimeout (simulated) minutes, when the connection ends.
fn get_streaming_events(ctx: &Ctx<'_>, shared: &std::sync::Arc<Shared>, payload: &Element) -> Result<Reply, Failure> {
    let ids: Vec<String> = payload
        .child("SubscriptionIds")
        .map(|l| {
            l.children_named("SubscriptionId")
                .map(|i| i.text().to_owned())
                .collect()
        })
        .unwrap_or_default();
    let timeout: u32 = payload.child_parse("ConnectionTimeout")?.unwrap_or(30);
    if ids.is_empty() || !super::notify::CONNECTION_TIMEOUT_MINUTES.contains(&timeout) {
        return Err(Failure::Fault(FaultSpec::new(
            ResponseCode::ErrorInvalidRequest,
            "GetStreamingEvents needs subscription ids and a ConnectionTimeout of 1 to 30 minutes.",
        )));
    }
    if ids.len() > MAX_STREAM_SUBSCRIPTIONS {
        return Err(Failure::Fault(FaultSpec::new(
            ResponseCode::ErrorInvalidRequest,
            format!("A connection carries at most {MAX_STREAM_SUBSCRIPTIONS} subscriptions."),
        )));
    }
    for id in &ids {
        // A grouped subscription lives on its anchor's back end: the
        // connection must be routed there, by the anchor and the cookie.
        let misrouted = own_subscription(ctx, id, true).ok().and_then(|sub| {
            let backend = sub.backend?;
            let routed = ctx.hints.anchor.as_deref().map(backend_of).as_ref() == Some(&backend)
                && ctx.hints.backend_cookie.as_ref() == Some(&backend);
            (!routed).then_some(backend)
        });
        if let Some(backend) = misrouted {
            let body = messages_payload(
                ctx,
                "m:GetStreamingEventsResponse",
                "m:GetStreamingEventsResponseMessage",
                vec![Err((
                    ResponseCode::ErrorProxiedSubscriptionCallFailure,
                    format!(
                        "The subscription {id} lives on {backend}: send X-AnchorMailbox and the X-BackEndOverrideCookie of its Subscribe."
                    ),
                ))],
            )?;
            return Ok(Reply::ok(body));
        }
        if let Err((code, text)) = own_subscription(ctx, id, true) {
            let body = messages_payload(
                ctx,
                "m:GetStreamingEventsResponse",
                "m:GetStreamingEventsResponseMessage",
                vec![Err((code, text))],
            )?;
            return Ok(Reply::ok(body));
        }
    }
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let shared = shared.clone();
    let version = ctx.version;
    let minute = shared.minute;
    let anchor = ctx.hints.anchor.clone();
    let streams = shared.streams.clone();
    let stream_id = streams.open(anchor, ids.len());
    tokio::spawn(async move {
        let info = server_version_info(shared.version);
        let mut changes = shared.changes.subscribe();
        let mut stop = shared.stop.clone();
        let mut drops = shared.drops.subscribe();
        let _open = streams.guard(stream_id);
        let end = tokio::time::sleep(super::notify::minutes(minute, timeout));
        tokio::pin!(end);
        // Exchange keeps an idle stream alive with empty OK envelopes.
        let heartbeat = minute / 2;
        loop {
            let now = shared.clock.now();
            let notes: Vec<(String, Vec<super::notify::Event>)> = shared.read(|w| {
                let mut subs = shared.subscriptions.lock().unwrap_or_else(|e| e.into_inner());
                ids.iter()
                    .filter_map(|id| {
                        let sub = subs.subs.get_mut(id)?;
                        let (events, seqs) = super::notify::events_since(w, sub, now).ok()?;
                        sub.seqs = seqs;
                        (!events.is_empty()).then(|| (id.clone(), events))
                    })
                    .collect()
            });
            if !notes.is_empty() {
                let Ok(chunk) = super::notify::streaming_envelope(version, &info, &notes, "OK") else {
                    break;
                };
                if tx.send(Ok(chunk)).await.is_err() {
                    break;
                }
            }
            tokio::select! {
                _ = &mut end => {
                    if let Ok(chunk) = super::notify::streaming_envelope(version, &info, &[], "Closed") {
                        let _ = tx.send(Ok(chunk)).await;
                    }
                    break;
                }
                _ = stop.changed() => break,
                // An injected drop cuts the connection mid-response.
                _ = drops.changed() => {
                    let _ = tx
                        .send(Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected drop")))
                        .await;
                    break;
                }
                r = changes.changed() => if r.is_err() { break },
                _ = tokio::time::sleep(heartbeat) => {
                    let Ok(chunk) = super::notify::streaming_envelope(version, &info, &[], "OK") else { break };
                    if tx.send(Ok(chunk)).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    Ok(Reply {
        status: 200,
        body: Vec::new(),
        reset: false,
        stream: Some(rx),
        set_cookie: None,
    })
}
