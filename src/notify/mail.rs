//! Reading an approver's answer from a message that reached the resource
//! mailbox: an Outlook vote (the verb is the start of the reply's subject, as
//! Outlook sends it, and PidLidVerbResponse when the server gives it), a
//! reply whose body starts with APPROUVER or REFUSER, or an automatic reply
//! (out of office), which says the approver is away.

/// What an answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Approve { comment: String },
    Refuse { comment: String },
    Absent,
}

/// How the answer was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Vote,
    Reply,
    AutoReply,
}

impl Channel {
    /// The `approvals.channel` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Vote => "outlook_vote",
            Channel::Reply | Channel::AutoReply => "outlook_reply",
        }
    }
}

/// The labels of the voting buttons, in order (approve, refuse).
pub const VOTING: [&str; 2] = ["Approuver", "Refuser"];

const APPROVE_WORDS: [&str; 3] = ["approuver", "approuvé", "approve"];
const REFUSE_WORDS: [&str; 3] = ["refuser", "refusé", "refuse"];
const AUTO_REPLY_PREFIXES: [&str; 5] = [
    "réponse automatique",
    "reponse automatique",
    "automatic reply",
    "absent du bureau",
    "out of office",
];

fn verb(word: &str) -> Option<bool> {
    let w = word.trim().trim_end_matches([':', ',', '.', '!']).to_lowercase();
    if APPROVE_WORDS.contains(&w.as_str()) {
        Some(true)
    } else if REFUSE_WORDS.contains(&w.as_str()) {
        Some(false)
    } else {
        None
    }
}

/// The reply's own text: what comes before the quoted original (Outlook's
/// separator line, a "De :" / "From:" header, or `>` quoting).
fn own_text(body: &str) -> String {
    let mut lines = Vec::new();
    for line in body.lines() {
        let t = line.trim();
        let lower = t.to_lowercase();
        if t.starts_with('>')
            || t.starts_with("-----")
            || t.starts_with("________")
            || lower.starts_with("de :")
            || lower.starts_with("de:")
            || lower.starts_with("from:")
        {
            break;
        }
        lines.push(line);
    }
    lines.join("\n").trim().to_owned()
}

/// The first word of a text and the rest.
fn first_word(text: &str) -> (&str, &str) {
    let t = text.trim_start();
    let end = t.find(|c: char| c.is_whitespace() || c == ':').unwrap_or(t.len());
    let rest = t[end..].trim_start().trim_start_matches(':');
    (&t[..end], rest.trim())
}

/// Reads an answer; `None` when the message says nothing resa understands.
pub fn read_answer(
    subject: &str,
    body: &str,
    item_class: Option<&str>,
    verb_response: Option<&str>,
) -> Option<(Answer, Channel)> {
    let lower_subject = subject.trim().to_lowercase();
    if item_class.is_some_and(|c| c.to_ascii_lowercase().starts_with("ipm.note.rules.oof"))
        || AUTO_REPLY_PREFIXES.iter().any(|p| lower_subject.starts_with(p))
    {
        return Some((Answer::Absent, Channel::AutoReply));
    }
    let text = own_text(body);
    let answer = |approve: bool, comment: String| {
        if approve {
            Answer::Approve { comment }
        } else {
            Answer::Refuse { comment }
        }
    };
    // A vote: the server's PidLidVerbResponse, else the subject's prefix
    // ("Approuver: …"), with the edited response's text as comment.
    if let Some(v) = verb_response.and_then(verb) {
        return Some((answer(v, text), Channel::Vote));
    }
    if let Some((head, _)) = subject.trim().split_once(':')
        && let Some(v) = verb(head)
    {
        return Some((answer(v, text), Channel::Vote));
    }
    // A reply starting with the keyword.
    let (word, rest) = first_word(&text);
    if let Some(v) = verb(word) {
        return Some((answer(v, rest.to_owned()), Channel::Reply));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_voting_buttons_read_back_from_their_verb_stream() {
        let stream = crate::ews::voting::verb_stream(&VOTING);
        assert_eq!(
            crate::ews::voting::labels(&stream),
            Some(vec!["Approuver".to_owned(), "Refuser".to_owned()])
        );
        assert_eq!(crate::ews::voting::labels(&stream[..10]), None);
    }

    #[test]
    fn answers_are_read_from_votes_replies_and_automatic_replies() {
        let check = |subject: &str, body: &str, class: Option<&str>, expected: Option<(Answer, Channel)>| {
            assert_eq!(read_answer(subject, body, class, None), expected, "{subject} / {body}");
        };
        check(
            "Approuver: Approbation demandée : Point [resa:x]",
            "",
            None,
            Some((Answer::Approve { comment: String::new() }, Channel::Vote)),
        );
        check(
            "Refuser : Approbation demandée",
            "Pas ce jour-là.\n\n-----Message d'origine-----\nAPPROUVER",
            None,
            Some((
                Answer::Refuse {
                    comment: "Pas ce jour-là.".into(),
                },
                Channel::Vote,
            )),
        );
        check(
            "RE: Approbation demandée : Point",
            "refuser : la salle est en travaux\nmerci\n> APPROUVER ou REFUSER",
            None,
            Some((
                Answer::Refuse {
                    comment: "la salle est en travaux\nmerci".into(),
                },
                Channel::Reply,
            )),
        );
        check(
            "RE: Approbation demandée : Point",
            "APPROUVER",
            None,
            Some((Answer::Approve { comment: String::new() }, Channel::Reply)),
        );
        check(
            "Réponse automatique : Approbation demandée",
            "Je suis absent jusqu'au 15.",
            None,
            Some((Answer::Absent, Channel::AutoReply)),
        );
        check(
            "Approbation",
            "Absent",
            Some("IPM.Note.Rules.OofTemplate.Microsoft"),
            Some((Answer::Absent, Channel::AutoReply)),
        );
        check(
            "RE: Approbation demandée",
            "Je regarde et je reviens vers vous.",
            None,
            None,
        );
        assert_eq!(
            read_answer("RE: x", "", None, Some("Approuver")),
            Some((Answer::Approve { comment: String::new() }, Channel::Vote))
        );
    }
}
