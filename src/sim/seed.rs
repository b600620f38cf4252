//! The seed file: the organisation a simulator starts with (mailboxes,
//! room lists, the service account and its password, faults), in TOML or
//! JSON chosen by the file extension.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::SimError;
use super::faults::FaultRule;
use super::state::{Account, MailboxInfo, MailboxKind, RoomList, Routing, World};

/// One mailbox of the seed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedMailbox {
    pub smtp: String,
    pub name: String,
    pub kind: MailboxKind,
    #[serde(default)]
    pub legacy_dn: Option<String>,
    /// How the address shows in items: SMTP (default) or EX (legacy DN).
    #[serde(default)]
    pub routing: Routing,
    /// When set, the owner can log in (login = the SMTP address).
    #[serde(default)]
    pub password: Option<String>,
}

/// The service account resa uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedServiceAccount {
    /// `DOMAIN\user` or `user@domain`.
    pub login: String,
    pub password: String,
    /// ApplicationImpersonation on every mailbox (default true).
    #[serde(default = "yes")]
    pub impersonation: bool,
}

fn yes() -> bool {
    true
}

/// The whole seed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    #[serde(default)]
    pub mailboxes: Vec<SeedMailbox>,
    #[serde(default)]
    pub room_lists: Vec<RoomList>,
    #[serde(default)]
    pub service_account: Option<SeedServiceAccount>,
    #[serde(default)]
    pub faults: Vec<FaultRule>,
}

impl Seed {
    /// Reads a `.toml` or `.json` seed.
    pub fn load(path: &Path) -> Result<Self, SimError> {
        let err = |message: String| SimError::Seed {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => serde_json::from_str(&text).map_err(|e| err(e.to_string())),
            _ => toml::from_str(&text).map_err(|e| err(e.to_string())),
        }
    }

    /// The logins: the service account and every mailbox with a password.
    pub fn accounts(&self) -> Vec<Account> {
        let mut out: Vec<Account> = self
            .service_account
            .iter()
            .map(|s| Account {
                login: s.login.clone(),
                password: s.password.clone(),
                impersonation: s.impersonation,
                mailbox: None,
            })
            .collect();
        out.extend(self.mailboxes.iter().filter_map(|m| {
            m.password.as_ref().map(|p| Account {
                login: m.smtp.to_lowercase(),
                password: p.clone(),
                impersonation: false,
                mailbox: Some(m.smtp.to_lowercase()),
            })
        }));
        out
    }

    /// The starting world.
    pub fn build(&self, epoch: u64) -> Result<World, SimError> {
        let mut w = World::new(epoch);
        for m in &self.mailboxes {
            w.add_mailbox(MailboxInfo {
                smtp: m.smtp.clone(),
                name: m.name.clone(),
                kind: m.kind,
                legacy_dn: m.legacy_dn.clone().unwrap_or_default(),
                routing: m.routing,
            })?;
        }
        for l in &self.room_lists {
            w.room_lists.push(RoomList {
                smtp: l.smtp.to_lowercase(),
                name: l.name.clone(),
                rooms: l.rooms.iter().map(|r| r.to_lowercase()).collect(),
            });
        }
        w.accounts = self.accounts();
        Ok(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_seed_reads() {
        let text = r#"
            [service_account]
            login = 'RESA\svc-resa'
            password = "s3cret"

            [[mailboxes]]
            smtp = "Salle.Cezanne@plainecommune.fr"
            name = "Salle Cézanne"
            kind = "room"

            [[mailboxes]]
            smtp = "agent@plainecommune.fr"
            name = "Agent"
            kind = "user"
            routing = "EX"
            password = "pw"

            [[room_lists]]
            smtp = "salles@plainecommune.fr"
            name = "Salles"
            rooms = ["salle.cezanne@plainecommune.fr"]
        "#;
        let seed: Seed = toml::from_str(text).unwrap_or_else(|e| panic!("{e}"));
        let w = seed.build(1).unwrap_or_else(|e| panic!("{e}"));
        assert!(w.mailbox("salle.cezanne@plainecommune.fr").is_ok());
        assert_eq!(w.accounts.len(), 2);
        assert!(w.accounts[0].matches("svc-resa", "RESA"));
        assert!(w.accounts[0].matches("RESA\\svc-resa", ""));
        assert!(!w.accounts[0].matches("agent", "RESA"));
    }
}
