//! Messages to people: the templates of every booking event in French and
//! English, their rendering with a booking's data, and the signed links of
//! approval messages ([`links`]).
//!
//! Templates are plain text with `{{name}}` placeholders. Rendering is one
//! pass: a value is never read again for placeholders, so text from a
//! booking (a subject, a comment) cannot smuggle another variable in; control
//! characters are dropped from values, and line breaks too in subjects, so a
//! value cannot add a header or forge lines of the subject. Bodies are sent
//! as text, never as HTML; the web preview escapes them like any other text.
//!
//! The defaults live here; an admin's edited version is stored in
//! `message_templates` and takes precedence.

pub mod links;
pub mod mail;

use crate::domain::reason::Lang;
use std::collections::BTreeMap;

/// Every event a message is sent for (the `message_templates.event` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Event {
    Accepted,
    PartiallyAccepted,
    Declined,
    Held,
    ApprovalRequest,
    Approved,
    Refused,
    CancelledByManager,
    Reminder,
    ApprovalReminder,
    PickupInstructions,
    ReleasedNoCheckin,
    OverdueReturn,
    RepeatedNoShow,
}

impl Event {
    pub const ALL: [Event; 14] = [
        Event::Accepted,
        Event::PartiallyAccepted,
        Event::Declined,
        Event::Held,
        Event::ApprovalRequest,
        Event::ApprovalReminder,
        Event::Approved,
        Event::Refused,
        Event::CancelledByManager,
        Event::Reminder,
        Event::PickupInstructions,
        Event::ReleasedNoCheckin,
        Event::OverdueReturn,
        Event::RepeatedNoShow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::Accepted => "accepted",
            Event::PartiallyAccepted => "partially_accepted",
            Event::Declined => "declined",
            Event::Held => "held",
            Event::ApprovalRequest => "approval_request",
            Event::Approved => "approved",
            Event::Refused => "refused",
            Event::CancelledByManager => "cancelled_by_manager",
            Event::Reminder => "reminder",
            Event::ApprovalReminder => "approval_reminder",
            Event::PickupInstructions => "pickup_instructions",
            Event::ReleasedNoCheckin => "released_no_checkin",
            Event::OverdueReturn => "overdue_return",
            Event::RepeatedNoShow => "repeated_no_show",
        }
    }

    pub fn parse(s: &str) -> Option<Event> {
        Event::ALL.iter().copied().find(|e| e.as_str() == s)
    }

    /// What the event is, for the admin's list.
    pub fn label(self, lang: Lang) -> &'static str {
        let (fr, en) = match self {
            Event::Accepted => ("Demande acceptée", "Request accepted"),
            Event::PartiallyAccepted => ("Demande acceptée en partie", "Request partly accepted"),
            Event::Declined => ("Demande refusée par les règles", "Request declined by the rules"),
            Event::Held => ("Demande en attente d'approbation", "Request awaiting approval"),
            Event::ApprovalRequest => (
                "Demande d'approbation (à l'approbateur)",
                "Approval request (to the approver)",
            ),
            Event::ApprovalReminder => ("Rappel à l'approbateur", "Reminder to the approver"),
            Event::Approved => ("Demande approuvée", "Request approved"),
            Event::Refused => ("Demande refusée par un approbateur", "Request refused by an approver"),
            Event::CancelledByManager => ("Annulation par un gestionnaire", "Cancelled by a manager"),
            Event::Reminder => ("Rappel avant la réservation", "Reminder before the booking"),
            Event::PickupInstructions => ("Instructions de retrait du véhicule", "Vehicle pickup instructions"),
            Event::ReleasedNoCheckin => ("Libérée faute de présence", "Released, nobody checked in"),
            Event::OverdueReturn => (
                "Retour en retard (au gestionnaire et au réservataire suivant)",
                "Overdue return (to the manager and the next booker)",
            ),
            Event::RepeatedNoShow => (
                "Absences répétées d'une série (au gestionnaire)",
                "Repeated no-shows of a series (to the manager)",
            ),
        };
        match lang {
            Lang::Fr => fr,
            Lang::En => en,
        }
    }
}

/// The variables a template may use, with what each holds (shown in the editor).
pub const VARIABLES: [(&str, &str, &str); 18] = [
    ("resource", "la ressource", "the resource"),
    ("subject", "l'objet de la réunion", "the meeting's subject"),
    ("organiser", "l'organisateur", "the organiser"),
    ("when", "la date et l'heure", "the date and time"),
    (
        "decision",
        "la décision et ses raisons (règle et niveau qui l'a fixée)",
        "the decision and its reasons (rule and the level that set it)",
    ),
    ("circuit", "le circuit de validation", "the approval circuit"),
    ("step", "l'étape du circuit", "the circuit's step"),
    ("approvers", "les approbateurs de l'étape", "the step's approvers"),
    ("approver", "l'approbateur qui a répondu", "the approver who answered"),
    (
        "comment",
        "le commentaire de l'approbateur ou du gestionnaire",
        "the approver's or manager's comment",
    ),
    (
        "link",
        "le lien d'approbation à usage unique",
        "the single-use approval link",
    ),
    ("deadline", "la fin de validité du lien", "when the link expires"),
    ("reference", "la référence de la demande", "the request's reference"),
    ("instructions", "les instructions de retrait", "the pickup instructions"),
    ("mailbox", "l'adresse de la ressource", "the resource's address"),
    (
        "cancelled_by",
        "qui a annulé la réservation",
        "who cancelled the booking",
    ),
    ("cancelled_at", "quand elle a été annulée", "when it was cancelled"),
    (
        "count",
        "le nombre d'occurrences libérées faute de présence",
        "how many occurrences were released for want of a check-in",
    ),
];

/// A template: a subject and a body, with placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub subject: String,
    pub body: String,
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

/// The built-in template of an event.
pub fn default_template(event: Event, lang: Lang) -> Template {
    let (subject, body) = match (event, lang) {
        (Event::Accepted, Lang::Fr) => ("Accepté : {{subject}}", "{{decision}}\n\n{{resource}}, {{when}}."),
        (Event::Accepted, Lang::En) => ("Accepted: {{subject}}", "{{decision}}\n\n{{resource}}, {{when}}."),
        (Event::PartiallyAccepted, Lang::Fr) => (
            "Accepté en partie : {{subject}}",
            "{{decision}}\n\n{{resource}}, {{when}}.",
        ),
        (Event::PartiallyAccepted, Lang::En) => (
            "Partly accepted: {{subject}}",
            "{{decision}}\n\n{{resource}}, {{when}}.",
        ),
        (Event::Declined, Lang::Fr) => ("Refusé : {{subject}}", "{{decision}}\n\n{{resource}}, {{when}}."),
        (Event::Declined, Lang::En) => ("Declined: {{subject}}", "{{decision}}\n\n{{resource}}, {{when}}."),
        (Event::Held, Lang::Fr) => (
            "En attente d'approbation : {{subject}}",
            "{{decision}}\n\nCircuit de validation : {{circuit}}.\nApprobation demandée à : {{approvers}}.\n\n{{resource}}, {{when}}.",
        ),
        (Event::Held, Lang::En) => (
            "Awaiting approval: {{subject}}",
            "{{decision}}\n\nApproval circuit: {{circuit}}.\nApproval asked of: {{approvers}}.\n\n{{resource}}, {{when}}.",
        ),
        (Event::ApprovalRequest, Lang::Fr) => (
            "Approbation demandée : {{subject}} ({{resource}}) {{reference}}",
            "Bonjour,\n\n{{organiser}} demande {{resource}} pour « {{subject}} », {{when}}.\n\
             Circuit de validation : {{circuit}}, étape {{step}}.\n\n{{decision}}\n\n\
             Pour répondre dans Outlook, utilisez les boutons de vote Approuver ou Refuser, ou répondez \
             à ce message en commençant par APPROUVER ou REFUSER, suivi si vous le souhaitez d'un commentaire.\n\
             Pour répondre sur le site : {{link}}\n(lien à usage unique, valable jusqu'au {{deadline}})",
        ),
        (Event::ApprovalRequest, Lang::En) => (
            "Approval requested: {{subject}} ({{resource}}) {{reference}}",
            "Hello,\n\n{{organiser}} asks for {{resource}} for \"{{subject}}\", {{when}}.\n\
             Approval circuit: {{circuit}}, step {{step}}.\n\n{{decision}}\n\n\
             To answer in Outlook, use the Approuver (approve) or Refuser (refuse) voting buttons, or reply \
             to this message starting with APPROUVER or REFUSER, followed by a comment if you wish.\n\
             To answer on the web site: {{link}}\n(single-use link, valid until {{deadline}})",
        ),
        (Event::ApprovalReminder, Lang::Fr) => (
            "Rappel : approbation demandée : {{subject}} ({{resource}}) {{reference}}",
            "Bonjour,\n\nUne demande attend toujours votre réponse : {{organiser}} demande {{resource}} pour \
             « {{subject}} », {{when}}.\nCircuit de validation : {{circuit}}, étape {{step}}.\n\n\
             Répondez avec les boutons de vote Approuver ou Refuser, ou par APPROUVER ou REFUSER en début \
             de réponse.\nPour répondre sur le site : {{link}}\n(lien à usage unique, valable jusqu'au {{deadline}})",
        ),
        (Event::ApprovalReminder, Lang::En) => (
            "Reminder: approval requested: {{subject}} ({{resource}}) {{reference}}",
            "Hello,\n\nA request still awaits your answer: {{organiser}} asks for {{resource}} for \
             \"{{subject}}\", {{when}}.\nApproval circuit: {{circuit}}, step {{step}}.\n\n\
             Answer with the Approuver or Refuser voting buttons, or start your reply with APPROUVER or \
             REFUSER.\nTo answer on the web site: {{link}}\n(single-use link, valid until {{deadline}})",
        ),
        (Event::Approved, Lang::Fr) => (
            "Approuvé : {{subject}}",
            "Votre demande de {{resource}} pour {{when}} est approuvée (circuit {{circuit}}).\n{{comment}}",
        ),
        (Event::Approved, Lang::En) => (
            "Approved: {{subject}}",
            "Your request for {{resource}} {{when}} is approved (circuit {{circuit}}).\n{{comment}}",
        ),
        (Event::Refused, Lang::Fr) => (
            "Refusé : {{subject}}",
            "Votre demande de {{resource}} pour {{when}} est refusée par {{approver}} (circuit {{circuit}}).\n\
             Commentaire : {{comment}}",
        ),
        (Event::Refused, Lang::En) => (
            "Refused: {{subject}}",
            "Your request for {{resource}} {{when}} is refused by {{approver}} (circuit {{circuit}}).\n\
             Comment: {{comment}}",
        ),
        (Event::CancelledByManager, Lang::Fr) => (
            "Annulé : {{subject}}",
            "Votre réservation de {{resource}} {{when}} a été annulée par {{cancelled_by}}, gestionnaire, \
             {{cancelled_at}}.\n\n{{comment}}",
        ),
        (Event::CancelledByManager, Lang::En) => (
            "Cancelled: {{subject}}",
            "Your booking of {{resource}} {{when}} was cancelled by {{cancelled_by}}, a manager, \
             {{cancelled_at}}.\n\n{{comment}}",
        ),
        (Event::Reminder, Lang::Fr) => (
            "Rappel : {{subject}}",
            "Rappel : vous avez réservé {{resource}} {{when}}.\nSi vous n'en avez plus besoin, annulez la \
             réunion dans Outlook pour la libérer.",
        ),
        (Event::Reminder, Lang::En) => (
            "Reminder: {{subject}}",
            "Reminder: you booked {{resource}} {{when}}.\nIf you no longer need it, cancel the meeting in \
             Outlook to free it.",
        ),
        (Event::PickupInstructions, Lang::Fr) => (
            "Retrait du véhicule : {{resource}}",
            "Votre réservation de {{resource}} pour {{when}} est acceptée.\n\nRetrait : {{instructions}}",
        ),
        (Event::PickupInstructions, Lang::En) => (
            "Vehicle pickup: {{resource}}",
            "Your booking of {{resource}} {{when}} is accepted.\n\nPickup: {{instructions}}",
        ),
        (Event::ReleasedNoCheckin, Lang::Fr) => (
            "Réservation libérée : {{subject}}",
            "Personne ne s'est présenté : {{resource}} ({{when}}) est libéré pour d'autres.",
        ),
        (Event::ReleasedNoCheckin, Lang::En) => (
            "Booking released: {{subject}}",
            "Nobody checked in: {{resource}} ({{when}}) is released for others.",
        ),
        (Event::OverdueReturn, Lang::Fr) => (
            "Retour en retard : {{resource}}",
            "Bonjour,\n\n{{resource}}, emprunté par {{organiser}}, devait être rendu le {{when}} et ne l'est \
             pas encore.\nSi vous l'avez réservé ensuite, il pourrait ne pas être disponible à l'heure prévue.",
        ),
        (Event::OverdueReturn, Lang::En) => (
            "Overdue return: {{resource}}",
            "Hello,\n\n{{resource}}, taken by {{organiser}}, was due back on {{when}} and is not back yet.\n\
             If you booked it next, it may not be available at the planned time.",
        ),
        (Event::RepeatedNoShow, Lang::Fr) => (
            "Absences répétées : {{subject}} ({{resource}})",
            "Bonjour,\n\n{{count}} occurrences de la série « {{subject}} » de {{organiser}} sur {{resource}} ont \
             été libérées faute de présence. Vous pouvez en parler avec l'organisateur ou annuler la série.",
        ),
        (Event::RepeatedNoShow, Lang::En) => (
            "Repeated no-shows: {{subject}} ({{resource}})",
            "Hello,\n\n{{count}} occurrences of the series \"{{subject}}\" by {{organiser}} on {{resource}} were \
             released for want of a check-in. You may talk it over with the organiser or cancel the series.",
        ),
    };
    Template {
        subject: subject.to_owned(),
        body: body.to_owned(),
    }
}

/// The placeholders of a text that name no known variable, or that are not
/// closed, for the editor to refuse.
pub fn unknown_placeholders(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        match after.find("}}") {
            Some(close) => {
                let name = after[..close].trim();
                if !VARIABLES.iter().any(|(v, _, _)| *v == name) {
                    out.push(name.to_owned());
                }
                rest = &after[close + 2..];
            }
            None => {
                out.push(format!("{{{{{}", after.chars().take(20).collect::<String>()));
                break;
            }
        }
    }
    out
}

/// A value as it may enter a text: control characters dropped, and line
/// breaks too when it goes into a subject.
fn clean(value: &str, single_line: bool) -> String {
    value
        .chars()
        .map(|c| {
            if single_line && (c == '\n' || c == '\r') {
                ' '
            } else {
                c
            }
        })
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect()
}

/// Replaces each `{{name}}` with its value, in one pass; an unknown name
/// becomes empty.
pub fn fill(text: &str, vars: &BTreeMap<&str, String>, single_line: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        match after.find("}}") {
            Some(close) => {
                let name = after[..close].trim();
                if let Some(v) = vars.get(name) {
                    out.push_str(&clean(v, single_line));
                }
                rest = &after[close + 2..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Renders a template. Lines left empty by an empty variable are kept: the
/// text stays as the admin wrote it.
pub fn render(template: &Template, vars: &BTreeMap<&str, String>) -> Rendered {
    let subject = fill(&template.subject, vars, true);
    let subject: String = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    Rendered {
        subject,
        body: fill(&template.body, vars, false).trim_end().to_owned(),
    }
}

/// The reference put in an approval message's subject, which the answer
/// (vote, reply, automatic reply) keeps and by which it is matched.
pub fn reference(booking: uuid::Uuid) -> String {
    format!("[resa:{booking}]")
}

/// The booking named by a reference somewhere in a subject.
pub fn find_reference(subject: &str) -> Option<uuid::Uuid> {
    let start = subject.find("[resa:")? + "[resa:".len();
    let end = subject[start..].find(']')? + start;
    uuid::Uuid::parse_str(subject[start..end].trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&'static str, &str)]) -> BTreeMap<&'static str, String> {
        pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
    }

    #[test]
    fn values_are_filled_once_and_cannot_inject_placeholders_or_headers() {
        let t = Template {
            subject: "Accepté : {{subject}}".into(),
            body: "{{subject}} / {{comment}}".into(),
        };
        let r = render(
            &t,
            &vars(&[
                ("subject", "Point {{link}}\r\nBcc: x@y"),
                ("link", "SECRET"),
                ("comment", "a\nb"),
            ]),
        );
        assert_eq!(r.subject, "Accepté : Point {{link}} Bcc: x@y");
        assert_eq!(r.body, "Point {{link}}\nBcc: x@y / a\nb");
        assert!(!r.body.contains("SECRET"));
    }

    #[test]
    fn every_default_uses_only_known_variables_in_both_languages() {
        for e in Event::ALL {
            for lang in [Lang::Fr, Lang::En] {
                let t = default_template(e, lang);
                assert!(unknown_placeholders(&t.subject).is_empty(), "{e:?} {lang:?}");
                assert!(unknown_placeholders(&t.body).is_empty(), "{e:?} {lang:?}");
            }
            assert_eq!(Event::parse(e.as_str()), Some(e));
        }
        assert_eq!(
            unknown_placeholders("{{ nope }} {{when}} {{open"),
            vec!["nope", "{{open"]
        );
    }

    #[test]
    fn a_reference_is_found_again_in_an_answers_subject() {
        let id = uuid::Uuid::from_u128(0x1234);
        let subject = format!("Approuver: Approbation demandée : Point (Salle) {}", reference(id));
        assert_eq!(find_reference(&subject), Some(id));
        assert_eq!(find_reference("RE: nothing"), None);
    }
}
