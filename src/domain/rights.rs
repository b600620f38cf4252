//! Rights: what an organiser may do on a resource, from grants.
//!
//! Rules, in order: an applicable Deny grant always wins; otherwise grants
//! to the person beat grants to their groups; among grants of the same kind
//! the most specific scope wins, then the strongest role; with no applicable
//! grant, the policy's default right applies. The result names the grant
//! (or the default) that decided, for the explanation.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::policy::{DefaultRight, Resolved, Scope, ScopeChain};

/// Who a grant is given to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Subject {
    Person(Uuid),
    /// A directory group; membership is transitive (nested groups).
    Group(Uuid),
}

/// What a grant allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Forbids booking, whatever else is granted.
    Deny,
    /// May see the resource's calendar, not book it.
    View,
    /// May ask; the request is held for approval.
    Request,
    /// May book within the rules.
    Book,
    /// Manages the resource: books, approves, may bypass rules if allowed.
    Manage,
}

/// A grant of a role on a scope to a person or a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub id: Uuid,
    pub subject: Subject,
    pub scope: Scope,
    pub role: Role,
}

/// The organiser as the rights rules see them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Principal {
    /// The directory person, if the organiser was found.
    pub person: Option<Uuid>,
    /// All groups the person belongs to, nested membership included.
    pub groups: Vec<Uuid>,
}

/// The right that results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Right {
    Denied,
    None,
    View,
    Request,
    Book,
    Manage,
}

impl Right {
    /// Whether the organiser may at least ask for the resource.
    pub fn may_request(self) -> bool {
        matches!(self, Right::Request | Right::Book | Right::Manage)
    }
}

/// What decided the right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RightSource {
    Grant { grant: Uuid, subject: Subject },
    Default,
}

/// The right of one organiser on one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RightDecision {
    pub right: Right,
    pub source: RightSource,
    /// The grant's scope, or the scope of the default right.
    pub scope: Scope,
}

fn role_right(role: Role) -> Right {
    match role {
        Role::Deny => Right::Denied,
        Role::View => Right::View,
        Role::Request => Right::Request,
        Role::Book => Right::Book,
        Role::Manage => Right::Manage,
    }
}

/// Resolves the organiser's right on the resource described by `chain`.
pub fn resolve_right(
    grants: &[Grant],
    principal: &Principal,
    chain: &ScopeChain,
    default_right: &Resolved<DefaultRight>,
) -> RightDecision {
    let applies = |g: &&Grant| {
        chain.contains(&g.scope)
            && match g.subject {
                Subject::Person(p) => principal.person == Some(p),
                Subject::Group(gr) => principal.groups.contains(&gr),
            }
    };
    let applicable: Vec<&Grant> = grants.iter().filter(applies).collect();
    let decide = |g: &Grant| RightDecision {
        right: role_right(g.role),
        source: RightSource::Grant {
            grant: g.id,
            subject: g.subject,
        },
        scope: g.scope,
    };

    // The most specific deny is reported; any deny decides. Ties are broken
    // by grant id so that the result does not depend on input order.
    if let Some(deny) = applicable
        .iter()
        .filter(|g| g.role == Role::Deny)
        .max_by_key(|g| (g.scope, std::cmp::Reverse(g.id)))
    {
        return decide(deny);
    }
    let best = |person: bool| {
        applicable
            .iter()
            .filter(|g| matches!(g.subject, Subject::Person(_)) == person)
            .max_by_key(|g| (g.scope, g.role, std::cmp::Reverse(g.id)))
            .copied()
    };
    if let Some(g) = best(true).or_else(|| best(false)) {
        return decide(g);
    }
    RightDecision {
        right: match default_right.value {
            DefaultRight::Book => Right::Book,
            DefaultRight::Request => Right::Request,
            DefaultRight::None => Right::None,
        },
        source: RightSource::Default,
        scope: default_right.scope,
    }
}
