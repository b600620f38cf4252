//! Server-side authentication: Basic, and NTLM challenge/response as IIS
//! does it (a 401 with `WWW-Authenticate: NTLM`, a type-2 challenge on the
//! same connection, then the type-3 message whose NTLMv2 proof is checked
//! against the seed password). NTLM authenticates the TCP connection, so
//! the server keeps one [`NtlmServer`] per connection.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use md5::Md5;

use super::state::Account;
use crate::ews::ntlm::ntowf_v2;

const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";
const NEGOTIATE_UNICODE: u32 = 0x0000_0001;
const REQUEST_TARGET: u32 = 0x0000_0004;
const NEGOTIATE_NTLM: u32 = 0x0000_0200;
const NEGOTIATE_ALWAYS_SIGN: u32 = 0x0000_8000;
const TARGET_TYPE_DOMAIN: u32 = 0x0001_0000;
const NEGOTIATE_EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
const NEGOTIATE_TARGET_INFO: u32 = 0x0080_0000;
const NEGOTIATE_VERSION: u32 = 0x0200_0000;
/// Flags a client may ask for that the server echoes (signing, sealing,
/// key exchange, 128/56-bit): HTTP authentication never uses them, but
/// clients refuse a challenge that drops flags they require.
const ECHOED: u32 = 0x0000_0010 | 0x0000_0020 | 0x2000_0000 | 0x4000_0000 | 0x8000_0000 | 0x0000_4000;

/// The NetBIOS domain and computer names the challenge announces.
const DOMAIN: &str = "RESA";
const COMPUTER: &str = "EXCHSIM";

/// Who a request is from, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Index into `World::accounts`.
    pub account: usize,
}

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn from_utf16le(b: &[u8]) -> String {
    let units: Vec<u16> = b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    String::from_utf16_lossy(&units)
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    b.get(i..i + 2)?.try_into().ok().map(u16::from_le_bytes)
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    b.get(i..i + 4)?.try_into().ok().map(u32::from_le_bytes)
}

/// A `(len, maxlen, offset)` field's bytes.
fn field(b: &[u8], at: usize) -> Option<&[u8]> {
    let len = usize::from(u16_at(b, at)?);
    let off = u32_at(b, at + 4)? as usize;
    b.get(off..off.checked_add(len)?)
}

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> Option<[u8; 16]> {
    let mut mac = Hmac::<Md5>::new_from_slice(key).ok()?;
    for p in parts {
        mac.update(p);
    }
    Some(mac.finalize().into_bytes().into())
}

/// Compares without an early exit, so timing says nothing about the proof.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One connection's NTLM handshake state.
#[derive(Debug, Default)]
pub struct NtlmServer {
    challenge: Option<[u8; 8]>,
}

/// What to do with a request's `Authorization` header.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthStep {
    /// Answer 401 with this `WWW-Authenticate` value (the type-2 message).
    Challenge(String),
    /// Authenticated.
    Done(Principal),
    /// Wrong credentials or a broken message: answer a plain 401.
    Refused,
}

impl NtlmServer {
    /// Handles `Authorization: NTLM <token>`. `now_filetime` goes into the
    /// challenge's MsvAvTimestamp.
    pub fn step(&mut self, token: &str, accounts: &[Account], now_filetime: u64) -> AuthStep {
        let Ok(msg) = base64::engine::general_purpose::STANDARD.decode(token.trim()) else {
            return AuthStep::Refused;
        };
        if msg.get(..8) != Some(SIGNATURE.as_slice()) {
            return AuthStep::Refused;
        }
        match u32_at(&msg, 8) {
            Some(1) => {
                let client_flags = u32_at(&msg, 12).unwrap_or(0);
                let server_challenge: [u8; 8] = rand::random();
                self.challenge = Some(server_challenge);
                let m = challenge_message(client_flags, server_challenge, now_filetime);
                AuthStep::Challenge(format!("NTLM {}", base64::engine::general_purpose::STANDARD.encode(m)))
            }
            Some(3) => {
                let Some(server_challenge) = self.challenge.take() else {
                    // IIS binds the handshake to the TCP connection: a client
                    // that sends type 3 on another connection is refused.
                    tracing::debug!("sim.ntlm_authenticate_without_challenge");
                    return AuthStep::Refused;
                };
                match verify(&msg, server_challenge, accounts) {
                    Some(account) => AuthStep::Done(Principal { account }),
                    None => AuthStep::Refused,
                }
            }
            _ => AuthStep::Refused,
        }
    }
}

fn av_pair(out: &mut Vec<u8>, id: u16, value: &[u8]) {
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&u16::try_from(value.len()).unwrap_or(0).to_le_bytes());
    out.extend_from_slice(value);
}

/// The CHALLENGE message (MS-NLMP 2.2.1.2).
fn challenge_message(client_flags: u32, server_challenge: [u8; 8], now_filetime: u64) -> Vec<u8> {
    let target_name = utf16le(DOMAIN);
    let mut info = Vec::new();
    av_pair(&mut info, 2, &utf16le(DOMAIN));
    av_pair(&mut info, 1, &utf16le(COMPUTER));
    av_pair(&mut info, 4, &utf16le("resa.example.test"));
    av_pair(&mut info, 3, &utf16le("exchsim.resa.example.test"));
    av_pair(&mut info, 7, &now_filetime.to_le_bytes());
    av_pair(&mut info, 0, &[]);
    let flags = NEGOTIATE_UNICODE
        | REQUEST_TARGET
        | NEGOTIATE_NTLM
        | NEGOTIATE_ALWAYS_SIGN
        | TARGET_TYPE_DOMAIN
        | NEGOTIATE_EXTENDED_SESSIONSECURITY
        | NEGOTIATE_TARGET_INFO
        | NEGOTIATE_VERSION
        | (client_flags & ECHOED);
    const HEADER: u32 = 56;
    let name_len = u16::try_from(target_name.len()).unwrap_or(0);
    let info_len = u16::try_from(info.len()).unwrap_or(0);
    let mut m = Vec::with_capacity(HEADER as usize + target_name.len() + info.len());
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&2u32.to_le_bytes());
    m.extend_from_slice(&name_len.to_le_bytes());
    m.extend_from_slice(&name_len.to_le_bytes());
    m.extend_from_slice(&HEADER.to_le_bytes());
    m.extend_from_slice(&flags.to_le_bytes());
    m.extend_from_slice(&server_challenge);
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(&info_len.to_le_bytes());
    m.extend_from_slice(&info_len.to_le_bytes());
    m.extend_from_slice(&(HEADER + u32::from(name_len)).to_le_bytes());
    // Version: Windows 6.1 build 7601, NTLM revision 15, as IIS 7.5 sends.
    m.extend_from_slice(&[6, 1, 0xb1, 0x1d, 0, 0, 0, 0x0f]);
    m.extend_from_slice(&target_name);
    m.extend_from_slice(&info);
    m
}

/// Checks the NTLMv2 proof of an AUTHENTICATE message and returns the
/// account it proves.
fn verify(msg: &[u8], server_challenge: [u8; 8], accounts: &[Account]) -> Option<usize> {
    let nt = field(msg, 20)?;
    let domain = from_utf16le(field(msg, 28)?);
    let user = from_utf16le(field(msg, 36)?);
    if nt.len() <= 24 || user.is_empty() {
        // NTLMv1 and anonymous logins are refused, as a hardened IIS does.
        return None;
    }
    let (proof, blob) = nt.split_at(16);
    accounts.iter().position(|a| {
        a.matches(&user, &domain)
            && hmac_md5(&ntowf_v2(&a.password, &user, &domain), &[&server_challenge, blob])
                .is_some_and(|expected| same(&expected, proof))
    })
}

/// Checks `Authorization: Basic <token>`.
pub fn basic(token: &str, accounts: &[Account]) -> Option<Principal> {
    let raw = base64::engine::general_purpose::STANDARD.decode(token.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (login, password) = text.split_once(':')?;
    let (domain, user) = match login.split_once('\\') {
        Some((d, u)) => (d, u),
        None => ("", login),
    };
    accounts
        .iter()
        .position(|a| a.matches(user, domain) && same(a.password.as_bytes(), password.as_bytes()))
        .map(|account| Principal { account })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ews::ntlm::{Challenge, NtlmCredentials, authenticate_message, negotiate_message};

    fn accounts() -> Vec<Account> {
        vec![Account {
            login: "RESA\\svc-resa".into(),
            password: "Passw0rd!".into(),
            impersonation: true,
            mailbox: None,
        }]
    }

    fn handshake(login: &str, password: &str) -> AuthStep {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut server = NtlmServer::default();
        let AuthStep::Challenge(c) = server.step(&b64.encode(negotiate_message()), &accounts(), 42) else {
            return AuthStep::Refused;
        };
        let raw = b64.decode(c.trim_start_matches("NTLM ")).unwrap_or_default();
        let Ok(challenge) = Challenge::parse(&raw) else {
            return AuthStep::Refused;
        };
        assert_eq!(challenge.timestamp(), Some(42));
        let creds = NtlmCredentials::from_login(login, password);
        let auth = authenticate_message(&creds, &challenge, [9; 8], 0);
        server.step(&b64.encode(auth), &accounts(), 42)
    }

    #[test]
    fn resa_client_messages_authenticate() {
        assert_eq!(
            handshake("RESA\\svc-resa", "Passw0rd!"),
            AuthStep::Done(Principal { account: 0 })
        );
        assert_eq!(handshake("RESA\\svc-resa", "wrong"), AuthStep::Refused);
        assert_eq!(handshake("RESA\\someone", "Passw0rd!"), AuthStep::Refused);
    }

    #[test]
    fn basic_checks_the_password() {
        let b64 = base64::engine::general_purpose::STANDARD;
        assert!(basic(&b64.encode("RESA\\svc-resa:Passw0rd!"), &accounts()).is_some());
        assert!(basic(&b64.encode("RESA\\svc-resa:nope"), &accounts()).is_none());
    }
}
