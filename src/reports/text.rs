//! The texts of the reports and their page, in French (the default) and
//! English. The report templates call [`t`] through the page; a test checks
//! that every key they use is here.

use crate::domain::Lang;

/// The text of `key`; `"?"` when unknown (caught by the tests).
pub fn t(lang: Lang, key: &str) -> &'static str {
    match TEXTS.iter().find(|(k, _, _)| *k == key) {
        Some((_, fr, en)) => match lang {
            Lang::Fr => fr,
            Lang::En => en,
        },
        None => {
            tracing::warn!(i18n.key = key, "reports: missing text");
            "?"
        }
    }
}

/// The label of a decision reason code, the code itself when unknown.
pub fn reason(lang: Lang, code: &str) -> String {
    let key = format!("reason.{code}");
    match TEXTS.iter().find(|(k, _, _)| *k == key) {
        Some((_, fr, en)) => match lang {
            Lang::Fr => (*fr).to_owned(),
            Lang::En => (*en).to_owned(),
        },
        None => code.to_owned(),
    }
}

/// (key, French, English).
pub static TEXTS: &[(&str, &str, &str)] = &[
    ("reports.title", "Statistiques", "Reports"),
    (
        "reports.intro",
        "Chiffres de la période choisie. Chaque graphique est suivi de son tableau ; chaque tableau se télécharge en CSV.",
        "Figures for the chosen period. Each chart is followed by its table; each table downloads as CSV.",
    ),
    ("reports.filters", "Filtres", "Filters"),
    ("reports.from", "Du (inclus)", "From (included)"),
    ("reports.to", "Au (inclus)", "To (included)"),
    ("reports.organisation", "Organisation", "Organisation"),
    ("reports.site", "Site", "Site"),
    ("reports.type", "Type de ressource", "Resource type"),
    ("reports.resource", "Ressource", "Resource"),
    ("reports.any", "Toutes", "All"),
    ("reports.apply", "Afficher", "Show"),
    ("reports.csv", "Télécharger en CSV", "Download as CSV"),
    (
        "reports.empty",
        "Aucune donnée pour cette période.",
        "No data for this period.",
    ),
    (
        "reports.bad_range",
        "Période invalide : la date de fin doit suivre la date de début (au plus 10 ans).",
        "Invalid period: the end date must follow the start date (10 years at most).",
    ),
    ("reports.contents", "Sommaire", "Contents"),
    (
        "reports.table",
        "Tableau (défile horizontalement)",
        "Table (scrolls horizontally)",
    ),
    // Sections
    ("occupancy.title", "Taux d'occupation", "Occupancy"),
    (
        "occupancy.intro",
        "Heures réservées (réservations acceptées) rapportées aux heures d'ouverture de chaque ressource, jours fériés fermés déduits.",
        "Booked hours (accepted bookings) against each resource's opening hours, closed public holidays left out.",
    ),
    ("occupancy.most", "Ressources les plus utilisées", "Most used resources"),
    (
        "occupancy.least",
        "Ressources les moins utilisées",
        "Least used resources",
    ),
    (
        "occupancy.chart_desc",
        "Taux d'occupation de chaque ressource, en pourcentage des heures d'ouverture.",
        "Occupancy of each resource, as a percentage of opening hours.",
    ),
    (
        "heat.title",
        "Occupation par jour et par heure",
        "Use by weekday and hour",
    ),
    (
        "heat.intro",
        "Heures réservées cumulées sur la période, par jour de la semaine et par heure (heure locale du site).",
        "Booked hours summed over the period, by weekday and hour (the site's local time).",
    ),
    (
        "heat.chart_desc",
        "Grille de sept lignes (lundi à dimanche) et 24 colonnes (heures) ; plus la case est foncée, plus il y a d'heures réservées.",
        "Grid of seven rows (Monday to Sunday) and 24 columns (hours); the darker the cell, the more booked hours.",
    ),
    (
        "reasons.title",
        "Demandes refusées par motif",
        "Declined requests by reason",
    ),
    (
        "reasons.intro",
        "Demandes refusées en tout ou en partie par les règles ; une demande compte une fois par motif donné.",
        "Requests declined in whole or in part by the rules; a request counts once per reason given.",
    ),
    (
        "reasons.chart_desc",
        "Nombre de demandes refusées pour chaque motif.",
        "Number of declined requests for each reason.",
    ),
    (
        "declines.title",
        "Demande non satisfaite par ressource",
        "Unmet demand by resource",
    ),
    (
        "declines.intro",
        "Demandes refusées par les règles, acceptées en partie, ou refusées par un valideur.",
        "Requests declined by the rules, accepted in part, or refused by an approver.",
    ),
    (
        "declines.chart_desc",
        "Nombre de demandes non satisfaites pour chaque ressource.",
        "Number of unmet requests for each resource.",
    ),
    (
        "approvals.title",
        "Demandes soumises à validation",
        "Requests held for approval",
    ),
    (
        "approvals.intro",
        "Demandes mises en attente de validation sur la période, et délai entre la mise en attente et la réponse du valideur.",
        "Requests held for approval in the period, and the time between the hold and the approver's answer.",
    ),
    (
        "approvals.chart_desc",
        "Nombre de demandes approuvées, refusées et sans réponse.",
        "Number of requests approved, refused and unanswered.",
    ),
    ("capacity.title", "Adéquation à la capacité", "Capacity fit"),
    (
        "capacity.intro",
        "Nombre de participants rapporté à la capacité de la salle, pour les réservations acceptées.",
        "Attendees against the room's capacity, for accepted bookings.",
    ),
    (
        "capacity.chart_desc",
        "Nombre de réservations par taux de remplissage de la salle.",
        "Number of bookings by how full the room was.",
    ),
    ("lead.title", "Délai de réservation", "Lead time"),
    (
        "lead.intro",
        "Temps écoulé entre la demande et le début de la réservation acceptée.",
        "Time between the request and the start of the accepted booking.",
    ),
    (
        "lead.chart_desc",
        "Nombre de réservations selon le délai entre la demande et le début.",
        "Number of bookings by the time between request and start.",
    ),
    (
        "cancellations.title",
        "Annulations et absences",
        "Cancellations and no-shows",
    ),
    (
        "cancellations.intro",
        "Réservations annulées, et réservations libérées faute de prise en charge (absences), par ressource.",
        "Cancelled bookings, and bookings released because nobody checked in (no-shows), by resource.",
    ),
    (
        "cancellations.chart_desc",
        "Taux d'annulation de chaque ressource.",
        "Cancellation rate of each resource.",
    ),
    (
        "organisations.title",
        "Utilisation par organisation",
        "Use by organisation",
    ),
    (
        "organisations.intro",
        "Heures réservées selon l'organisation de l'organisateur : la clé de répartition des coûts des ressources partagées (parc de véhicules).",
        "Booked hours by the organiser's organisation: the cost-sharing key of shared resources (vehicle pool).",
    ),
    (
        "organisations.chart_desc",
        "Part des heures réservées par chaque organisation.",
        "Share of booked hours by each organisation.",
    ),
    ("organisations.outside", "Hors annuaires", "Outside the directories"),
    // Columns
    ("col.resource", "Ressource", "Resource"),
    ("col.site", "Site", "Site"),
    ("col.organisation", "Organisation", "Organisation"),
    ("col.type", "Type", "Type"),
    ("col.booked_hours", "Heures réservées", "Booked hours"),
    ("col.open_hours", "Heures d'ouverture", "Opening hours"),
    ("col.occupancy", "Taux d'occupation", "Occupancy"),
    ("col.bookings", "Réservations", "Bookings"),
    ("col.weekday", "Jour", "Day"),
    ("col.reason", "Motif", "Reason"),
    ("col.code", "Code", "Code"),
    ("col.requests", "Demandes", "Requests"),
    ("col.declined", "Refusées par les règles", "Declined by the rules"),
    ("col.partially", "Acceptées en partie", "Partially accepted"),
    ("col.refused", "Refusées par un valideur", "Refused by an approver"),
    ("col.total", "Total", "Total"),
    ("col.held", "Mises en attente", "Held"),
    ("col.approved", "Approuvées", "Approved"),
    ("col.undecided", "Sans réponse", "Unanswered"),
    ("col.mean_hours", "Délai moyen (heures)", "Mean delay (hours)"),
    ("col.median_hours", "Délai médian (heures)", "Median delay (hours)"),
    ("col.max_hours", "Délai maximal (heures)", "Longest delay (hours)"),
    ("col.capacity", "Capacité", "Capacity"),
    ("col.mean_attendees", "Participants en moyenne", "Mean attendees"),
    ("col.fill", "Remplissage moyen", "Mean fill"),
    ("col.fill_25", "Jusqu'à 25 %", "Up to 25%"),
    ("col.fill_50", "25 à 50 %", "25 to 50%"),
    ("col.fill_75", "50 à 75 %", "50 to 75%"),
    ("col.fill_100", "75 à 100 %", "75 to 100%"),
    ("col.fill_over", "Au-delà de la capacité", "Over capacity"),
    ("col.lead", "Délai", "Lead time"),
    ("col.share", "Part", "Share"),
    ("col.lead_1", "Moins d'un jour", "Under a day"),
    ("col.lead_7", "1 à 7 jours", "1 to 7 days"),
    ("col.lead_30", "7 à 30 jours", "7 to 30 days"),
    ("col.lead_more", "30 jours et plus", "30 days and more"),
    ("col.median_days", "Délai médian (jours)", "Median lead time (days)"),
    ("col.accepted", "Acceptées", "Accepted"),
    ("col.cancelled", "Annulées", "Cancelled"),
    ("col.released", "Absences", "No-shows"),
    ("col.cancel_rate", "Taux d'annulation", "Cancellation rate"),
    ("col.noshow_rate", "Taux d'absence", "No-show rate"),
    ("col.kilometres", "Kilomètres parcourus", "Kilometres driven"),
    ("col.occurrences", "Créneaux", "Slots"),
    // Weekdays
    ("day.1", "lundi", "Monday"),
    ("day.2", "mardi", "Tuesday"),
    ("day.3", "mercredi", "Wednesday"),
    ("day.4", "jeudi", "Thursday"),
    ("day.5", "vendredi", "Friday"),
    ("day.6", "samedi", "Saturday"),
    ("day.7", "dimanche", "Sunday"),
    // Reasons
    ("reason.invalid_request", "Demande invalide", "Invalid request"),
    ("reason.conflict", "Créneau déjà pris", "Slot already taken"),
    (
        "reason.series_conflicts",
        "Trop de conflits dans la série",
        "Too many conflicts in the series",
    ),
    ("reason.min_duration", "Durée trop courte", "Too short"),
    ("reason.max_duration", "Durée trop longue", "Too long"),
    (
        "reason.min_notice",
        "Délai de prévenance insuffisant",
        "Not enough notice",
    ),
    (
        "reason.booking_window",
        "Hors de la fenêtre de réservation",
        "Outside the booking window",
    ),
    ("reason.horizon", "Trop loin dans le futur", "Too far ahead"),
    (
        "reason.outside_opening_hours",
        "Hors des heures d'ouverture",
        "Outside opening hours",
    ),
    (
        "reason.outside_work_hours",
        "Hors des heures de travail",
        "Outside working hours",
    ),
    ("reason.public_holiday", "Jour férié", "Public holiday"),
    ("reason.blackout", "Fermeture", "Blackout"),
    ("reason.capacity", "Capacité dépassée", "Over capacity"),
    (
        "reason.recurring_not_allowed",
        "Série non autorisée",
        "Series not allowed",
    ),
    ("reason.max_occurrences", "Trop d'occurrences", "Too many occurrences"),
    ("reason.quota_hours", "Quota d'heures atteint", "Hour quota reached"),
    (
        "reason.quota_count",
        "Quota de réservations atteint",
        "Booking quota reached",
    ),
    (
        "reason.quota_concurrent",
        "Trop de réservations simultanées",
        "Too many bookings at once",
    ),
    (
        "reason.external_not_allowed",
        "Organisateur externe",
        "External organiser",
    ),
    ("reason.unknown_organiser", "Organisateur inconnu", "Unknown organiser"),
    ("reason.no_right", "Pas de droit de réservation", "No right to book"),
    ("reason.denied", "Accès refusé", "Access denied"),
    ("reason.needs_approval", "Validation nécessaire", "Approval needed"),
    // The export page
    ("export.title", "Export des données", "Data export"),
    (
        "export.intro",
        "Téléchargez toutes les données de resa dans des formats ouverts : JSON avec son schéma JSON publié, CSV pour les tables principales et un fichier iCalendar par ressource, réunis dans une archive tar. C'est le même contenu que la commande « resa export » ; « resa import » le recharge dans une base vide.",
        "Download all of resa's data in open formats: JSON with its published JSON Schema, CSV for the main tables and one iCalendar file per resource, in one tar archive. It is what the \"resa export\" command writes; \"resa import\" loads it into an empty database.",
    ),
    (
        "export.personal",
        "L'archive contient des données personnelles (agents, réservations) : conservez-la en lieu sûr.",
        "The archive holds personal data (agents, bookings): keep it safe.",
    ),
    (
        "export.download",
        "Télécharger l'export complet",
        "Download the full export",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique() {
        let mut keys: Vec<&str> = TEXTS.iter().map(|(k, _, _)| *k).collect();
        keys.sort_unstable();
        let before = keys.len();
        keys.dedup();
        assert_eq!(before, keys.len());
    }

    /// Every `.t("key")` of the report and export templates and of the
    /// report code names a text of the table.
    #[test]
    fn every_key_used_exists() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = vec![
            root.join("src/reports/mod.rs"),
            root.join("src/web/pages/reports.rs"),
            root.join("src/web/pages/export.rs"),
        ];
        for entry in std::fs::read_dir(root.join("templates")).expect("templates").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("report") || name.starts_with("export") {
                files.push(entry.path());
            }
        }
        let mut missing = Vec::new();
        for path in files {
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            for part in text.split(".t(\"").skip(1).chain(text.split("t(lang, \"").skip(1)) {
                let key = part.split('"').next().unwrap_or_default();
                if !TEXTS.iter().any(|(k, _, _)| *k == key) {
                    missing.push(format!("{}: {key}", path.display()));
                }
            }
        }
        assert!(missing.is_empty(), "missing texts: {missing:?}");
    }
}
