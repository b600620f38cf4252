//! Transitive group membership, computed from the groups' `member` values.
//!
//! AD allows cycles (A contains B contains A); every walk here keeps a visited
//! set, so a cycle only means both groups apply.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::Hash;

/// One direct membership: `group` lists `member` in its `member` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Member<P, G> {
    Person(P),
    Group(G),
}

/// For every person that belongs to at least one group, the set of groups
/// they belong to directly or through nesting, however deep.
pub fn transitive_groups<P, G>(edges: &[(G, Member<P, G>)]) -> HashMap<P, BTreeSet<G>>
where
    P: Copy + Eq + Hash,
    G: Copy + Eq + Hash + Ord,
{
    // parents[g] = the groups that list g as a member.
    let mut parents: HashMap<G, Vec<G>> = HashMap::new();
    let mut direct: HashMap<P, Vec<G>> = HashMap::new();
    for &(group, member) in edges {
        match member {
            Member::Group(child) => parents.entry(child).or_default().push(group),
            Member::Person(p) => direct.entry(p).or_default().push(group),
        }
    }
    let mut ancestors_memo: HashMap<G, BTreeSet<G>> = HashMap::new();
    let mut result = HashMap::with_capacity(direct.len());
    for (person, groups) in direct {
        let mut all = BTreeSet::new();
        for g in groups {
            let ancestors = ancestors_memo.entry(g).or_insert_with(|| ancestors(g, &parents));
            all.extend(ancestors.iter().copied());
        }
        result.insert(person, all);
    }
    result
}

/// `g` and every group above it, by breadth-first walk with a visited set.
fn ancestors<G: Copy + Eq + Hash + Ord>(g: G, parents: &HashMap<G, Vec<G>>) -> BTreeSet<G> {
    let mut seen = HashSet::from([g]);
    let mut queue = VecDeque::from([g]);
    while let Some(current) = queue.pop_front() {
        for &p in parents.get(&current).map(Vec::as_slice).unwrap_or_default() {
            if seen.insert(p) {
                queue.push_back(p);
            }
        }
    }
    seen.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    type E = (char, Member<&'static str, char>);

    fn check(edges: &[E], person: &str, want: &str) {
        let got = transitive_groups(edges);
        let got: String = got.get(person).map(|s| s.iter().collect()).unwrap_or_default();
        assert_eq!(got, want, "groups of {person}");
    }

    #[test]
    fn three_levels_deep() {
        // C contains alice; B contains C; A contains B.
        let edges = [
            ('C', Member::Person("alice")),
            ('B', Member::Group('C')),
            ('A', Member::Group('B')),
            ('D', Member::Person("bob")),
        ];
        check(&edges, "alice", "ABC");
        check(&edges, "bob", "D");
        check(&edges, "nobody", "");
    }

    #[test]
    fn cycles_terminate() {
        let edges = [
            ('A', Member::Group('B')),
            ('B', Member::Group('A')),
            ('B', Member::Person("bob")),
            ('C', Member::Group('C')),
            ('C', Member::Person("carol")),
        ];
        check(&edges, "bob", "AB");
        check(&edges, "carol", "C");
    }

    #[test]
    fn diamond_counts_once() {
        let edges = [
            ('B', Member::Person("alice")),
            ('C', Member::Person("alice")),
            ('A', Member::Group('B')),
            ('A', Member::Group('C')),
        ];
        check(&edges, "alice", "ABC");
    }
}
