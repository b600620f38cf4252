//! The territory: the communes inside which a vehicle trip needs no approval
//! of its own, and whether a trip's destination lies inside it.
//!
//! A destination is free text ("Mairie de Saint-Denis", "93300", "Lyon",
//! "2 place de la Mairie, 93240 Stains"). It is compared without accents,
//! case or punctuation, "St" and "Ste" read as "Saint" and "Sainte". A
//! five-digit code in it (a postcode, or an INSEE code) decides first: one of
//! the territory's is inside, any other is outside (so "Saint-Denis 97400", on
//! La Réunion, is outside). Otherwise a commune's name (or one of its other
//! names) found as whole words is inside, and anything else is outside.

/// A commune of the territory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commune {
    pub name: String,
    /// The INSEE code (`93066`), when known.
    pub insee: Option<String>,
    pub postcodes: Vec<String>,
    /// Other names it goes by ("Saint-Ouen" for Saint-Ouen-sur-Seine).
    pub aliases: Vec<String>,
}

impl Commune {
    pub fn new(name: &str, insee: Option<&str>, postcodes: &[&str], aliases: &[&str]) -> Self {
        Self {
            name: name.to_owned(),
            insee: insee.map(str::to_owned),
            postcodes: postcodes.iter().map(|s| (*s).to_owned()).collect(),
            aliases: aliases.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// The communes of the territory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Territory {
    communes: Vec<Commune>,
    /// Each name and alias, normalised, as words.
    names: Vec<Vec<String>>,
    codes: Vec<String>,
}

impl Territory {
    pub fn new(communes: Vec<Commune>) -> Self {
        let names = communes
            .iter()
            .flat_map(|c| std::iter::once(&c.name).chain(c.aliases.iter()))
            .map(|n| words(n))
            .filter(|w| !w.is_empty())
            .collect();
        let codes = communes
            .iter()
            .flat_map(|c| c.insee.iter().chain(c.postcodes.iter()))
            .map(|c| c.trim().to_owned())
            .collect();
        Self { communes, names, codes }
    }

    /// The nine communes of Plaine Commune, the default territory.
    pub fn plaine_commune() -> Self {
        Self::new(vec![
            Commune::new("Aubervilliers", Some("93001"), &["93300"], &[]),
            Commune::new("Épinay-sur-Seine", Some("93031"), &["93800"], &[]),
            Commune::new("L'Île-Saint-Denis", Some("93039"), &["93450"], &[]),
            Commune::new("La Courneuve", Some("93027"), &["93120"], &[]),
            Commune::new("Pierrefitte-sur-Seine", Some("93059"), &["93380"], &[]),
            Commune::new(
                "Saint-Denis",
                Some("93066"),
                &["93200", "93210"],
                &["La Plaine Saint-Denis"],
            ),
            Commune::new("Saint-Ouen-sur-Seine", Some("93070"), &["93400"], &["Saint-Ouen"]),
            Commune::new("Stains", Some("93072"), &["93240"], &[]),
            Commune::new("Villetaneuse", Some("93079"), &["93430"], &[]),
        ])
    }

    pub fn communes(&self) -> &[Commune] {
        &self.communes
    }

    /// Whether a destination lies inside the territory; `None` when there is
    /// nothing to judge (blank).
    pub fn contains(&self, destination: &str) -> Option<bool> {
        let words = words(destination);
        if words.is_empty() {
            return None;
        }
        let codes: Vec<&String> = words
            .iter()
            .filter(|w| w.len() == 5 && w.bytes().all(|b| b.is_ascii_digit()))
            .collect();
        if !codes.is_empty() {
            return Some(codes.iter().any(|c| self.codes.contains(c)));
        }
        Some(
            self.names
                .iter()
                .any(|name| words.windows(name.len()).any(|w| w == name.as_slice())),
        )
    }

    /// Whether a destination lies outside: `Some(true)` only for a destination
    /// given and not inside.
    pub fn outside(&self, destination: &str) -> Option<bool> {
        self.contains(destination).map(|inside| !inside)
    }
}

/// The destination an invitation's body gives on a line of its own,
/// "Destination : Lyon" (any case, with or without the space before the
/// colon).
pub fn destination_line(body: &str) -> Option<String> {
    body.lines().find_map(|line| {
        let line = line.trim();
        let (key, value) = line.split_once(':')?;
        let key = key.trim();
        if !key.eq_ignore_ascii_case("destination") {
            return None;
        }
        let value = value.trim();
        (!value.is_empty()).then(|| value.chars().take(200).collect())
    })
}

/// What is wrong with one line of a territory as an admin writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineProblem {
    /// No commune name.
    Name,
    /// An INSEE code is five characters: digits, or 2A/2B for Corsica.
    Insee,
    /// A postcode is five digits.
    Postcode,
    /// The same commune twice.
    Duplicate,
}

impl LineProblem {
    /// The key of its text on the web site.
    pub fn key(self) -> &'static str {
        match self {
            LineProblem::Name => "territory.error.name",
            LineProblem::Insee => "territory.error.insee",
            LineProblem::Postcode => "territory.error.postcode",
            LineProblem::Duplicate => "territory.error.duplicate",
        }
    }
}

/// One commune a line, its fields separated by ";": the name, the INSEE
/// code, the postcodes, the other names (those two lists separated by
/// commas or spaces for codes, by commas for names). Only the name is
/// required; blank lines are skipped. Every wrong line is reported, by its
/// number from 1.
pub fn parse_lines(text: &str) -> Result<Vec<Commune>, Vec<(usize, LineProblem)>> {
    let mut out: Vec<Commune> = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut fields = line.split(';').map(str::trim);
        let name = fields.next().unwrap_or_default();
        let insee = fields.next().unwrap_or_default();
        let postcodes: Vec<String> = fields
            .next()
            .unwrap_or_default()
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let aliases: Vec<String> = fields
            .next()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let problem = if name.is_empty() {
            Some(LineProblem::Name)
        } else if !insee.is_empty() && !is_insee(insee) {
            Some(LineProblem::Insee)
        } else if postcodes
            .iter()
            .any(|p| p.len() != 5 || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            Some(LineProblem::Postcode)
        } else if out.iter().any(|c| words(&c.name) == words(name)) {
            Some(LineProblem::Duplicate)
        } else {
            None
        };
        match problem {
            Some(p) => problems.push((i + 1, p)),
            None => out.push(Commune {
                name: name.to_owned(),
                insee: (!insee.is_empty()).then(|| insee.to_uppercase()),
                postcodes,
                aliases,
            }),
        }
    }
    if problems.is_empty() { Ok(out) } else { Err(problems) }
}

/// The communes as [`parse_lines`] reads them back.
pub fn to_lines(communes: &[Commune]) -> String {
    communes
        .iter()
        .map(|c| {
            format!(
                "{} ; {} ; {} ; {}",
                c.name,
                c.insee.as_deref().unwrap_or_default(),
                c.postcodes.join(" "),
                c.aliases.join(", ")
            )
            .trim_end_matches([' ', ';'])
            .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_insee(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 5
        && b[0].is_ascii_digit()
        && (b[1].is_ascii_digit() || matches!(b[1], b'A' | b'B' | b'a' | b'b'))
        && b[2..].iter().all(u8::is_ascii_digit)
}

/// Lower case without accents; anything not a letter or a digit separates
/// words; "st"/"ste" read as "saint"/"sainte".
fn words(s: &str) -> Vec<String> {
    let mut plain = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        match c {
            'à' | 'â' | 'ä' | 'á' | 'ã' => plain.push('a'),
            'é' | 'è' | 'ê' | 'ë' => plain.push('e'),
            'î' | 'ï' | 'í' | 'ì' => plain.push('i'),
            'ô' | 'ö' | 'ó' | 'ò' | 'õ' => plain.push('o'),
            'ù' | 'û' | 'ü' | 'ú' => plain.push('u'),
            'ç' => plain.push('c'),
            'ÿ' => plain.push('y'),
            'ñ' => plain.push('n'),
            'œ' => plain.push_str("oe"),
            'æ' => plain.push_str("ae"),
            c if c.is_alphanumeric() => plain.push(c),
            _ => plain.push(' '),
        }
    }
    plain
        .split_whitespace()
        .map(|w| match w {
            "st" => "saint".to_owned(),
            "ste" => "sainte".to_owned(),
            w => w.to_owned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_inside_and_outside_plaine_commune() {
        let t = Territory::plaine_commune();
        for (destination, outside) in [
            ("Saint-Denis", Some(false)),
            ("saint denis", Some(false)),
            ("ST-DENIS", Some(false)),
            ("Mairie de Saint-Denis, 2 place Victor-Hugo", Some(false)),
            ("Epinay sur Seine", Some(false)),
            ("Épinay-sur-Seine", Some(false)),
            ("l'ile saint denis", Some(false)),
            ("La Courneuve (parc Georges-Valbon)", Some(false)),
            ("Saint-Ouen", Some(false)),
            ("12 rue de la Paix, 93300", Some(false)),
            ("93210", Some(false)),
            ("93066", Some(false)),
            ("Lyon", Some(true)),
            ("Bobigny", Some(true)),
            ("Paris 75010", Some(true)),
            ("Saint-Denis 97400", Some(true)),
            ("Denis", Some(true)),
            ("Stainsville", Some(true)),
            ("", None),
            ("  -  ", None),
        ] {
            assert_eq!(t.outside(destination), outside, "{destination:?}");
        }
    }

    #[test]
    fn a_territory_is_what_it_is_given() {
        let t = Territory::new(vec![Commune::new("Lyon", None, &["69001"], &[])]);
        assert_eq!(t.outside("lyon"), Some(false));
        assert_eq!(t.outside("Saint-Denis"), Some(true));
        assert_eq!(t.outside("69001"), Some(false));
    }

    #[test]
    fn an_admins_lines_are_read_back_and_every_wrong_line_is_named() {
        let lines = to_lines(Territory::plaine_commune().communes());
        assert!(
            lines.contains("Saint-Denis ; 93066 ; 93200 93210 ; La Plaine Saint-Denis"),
            "{lines}"
        );
        assert!(lines.contains("\nStains ; 93072 ; 93240\n"), "{lines}");
        assert_eq!(parse_lines(&lines).map(Territory::new), Ok(Territory::plaine_commune()));
        assert_eq!(
            parse_lines("Lyon\n\n  Ajaccio ; 2a004 ; 20000, 20090"),
            Ok(vec![
                Commune::new("Lyon", None, &[], &[]),
                Commune::new("Ajaccio", Some("2A004"), &["20000", "20090"], &[]),
            ])
        );
        assert_eq!(
            parse_lines(" ; 93066\nStains ; 9307\nStains ; ; 932\nLyon\nlyon"),
            Err(vec![
                (1, LineProblem::Name),
                (2, LineProblem::Insee),
                (3, LineProblem::Postcode),
                (5, LineProblem::Duplicate),
            ])
        );
    }

    #[test]
    fn the_destination_line_of_an_invitation() {
        assert_eq!(
            destination_line("Bonjour,\nDestination : Lyon\nMerci"),
            Some("Lyon".to_owned())
        );
        assert_eq!(
            destination_line("DESTINATION: Saint-Denis"),
            Some("Saint-Denis".to_owned())
        );
        assert_eq!(destination_line("Destination :   \nrien"), None);
        assert_eq!(destination_line("Réunion de service : ordre du jour"), None);
        assert_eq!(destination_line(""), None);
    }
}
