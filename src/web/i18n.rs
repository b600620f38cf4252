//! The site's texts in French (the default) and English.
//!
//! Texts are looked up by key; a unit test reads every template and fails
//! when a key used there is missing here, so a typo cannot ship as a raw key.

/// The language of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Fr,
    En,
}

impl Lang {
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "fr" => Some(Lang::Fr),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    /// The domain's language, for reasons and dates.
    pub fn domain(self) -> crate::domain::Lang {
        match self {
            Lang::Fr => crate::domain::Lang::Fr,
            Lang::En => crate::domain::Lang::En,
        }
    }

    /// The text of `key`; the key itself when unknown (caught by the test).
    pub fn text(self, key: &str) -> &'static str {
        match TEXTS.iter().find(|(k, _, _)| *k == key) {
            Some((_, fr, en)) => match self {
                Lang::Fr => fr,
                Lang::En => en,
            },
            None => {
                tracing::warn!(i18n.key = key, "web: missing text");
                "?"
            }
        }
    }
}

/// (key, French, English).
pub static TEXTS: &[(&str, &str, &str)] = &[
    ("site.name", "resa — réservations", "resa — bookings"),
    ("site.skip", "Aller au contenu", "Skip to content"),
    ("site.menu", "Menu principal", "Main menu"),
    ("site.switch_lang", "English", "Français"),
    ("site.switch_lang_label", "Switch to English", "Passer en français"),
    ("site.logged_as", "Connecté·e :", "Logged in as:"),
    ("site.logout", "Se déconnecter", "Log out"),
    (
        "site.table",
        "Tableau (défile horizontalement)",
        "Table (scrolls horizontally)",
    ),
    (
        "site.footer",
        "resa — Plaine Commune et Saint-Denis",
        "resa — Plaine Commune and Saint-Denis",
    ),
    ("role.agent", "agent", "agent"),
    ("role.manager", "gestionnaire", "manager"),
    ("role.admin", "administrateur", "administrator"),
    ("nav.home", "Accueil", "Home"),
    ("nav.bookings", "Mes réservations", "My bookings"),
    ("nav.search", "Rechercher et réserver", "Search and book"),
    ("nav.vehicles", "Véhicules et prêts", "Vehicles and loans"),
    ("nav.approvals", "Validations", "Approvals"),
    ("nav.blackouts", "Fermetures", "Blackouts"),
    ("nav.resources", "Ressources", "Resources"),
    ("nav.organisations", "Organisations et sites", "Organisations and sites"),
    ("nav.types", "Types de ressources", "Resource types"),
    ("nav.policies", "Règles", "Policies"),
    ("nav.grants", "Droits", "Grants"),
    ("nav.audit", "Journal", "Audit log"),
    ("nav.status", "État du service", "Service status"),
    ("nav.reports", "Statistiques", "Reports"),
    ("nav.export", "Export des données", "Data export"),
    ("home.title", "Accueil", "Home"),
    ("home.welcome", "Bienvenue", "Welcome"),
    (
        "home.intro",
        "Réservez salles, véhicules et matériel, et suivez vos demandes.",
        "Book rooms, vehicles and equipment, and follow your requests.",
    ),
    ("home.your_role", "Votre rôle :", "Your role:"),
    ("login.title", "Connexion", "Log in"),
    (
        "login.intro",
        "Connectez-vous avec votre compte Windows (identifiant, DOMAINE\\identifiant ou adresse).",
        "Log in with your Windows account (user name, DOMAIN\\user or address).",
    ),
    ("login.user", "Identifiant", "User name"),
    ("login.password", "Mot de passe", "Password"),
    ("login.submit", "Se connecter", "Log in"),
    (
        "login.unknown_person",
        "Votre compte est reconnu mais pas encore connu de resa. Réessayez après la prochaine synchronisation de l'annuaire (au plus une heure).",
        "Your account is valid but not yet known to resa. Try again after the next directory sync (within an hour).",
    ),
    (
        "login.inactive",
        "Votre compte est désactivé dans l'annuaire.",
        "Your account is disabled in the directory.",
    ),
    (
        "login.no_directory",
        "Aucun annuaire n'est configuré : la connexion est impossible.",
        "No directory is configured: logging in is impossible.",
    ),
    ("login.error_heading", "La connexion a échoué", "Login failed"),
    (
        "login.demo_heading",
        "Connexion de démonstration",
        "Demonstration sign-in",
    ),
    (
        "login.demo_intro",
        "Démonstration uniquement : sans annuaire, choisissez une personne fictive pour découvrir le site avec son rôle.",
        "Demonstration only: without a directory, pick a fictitious person to try the site with their role.",
    ),
    ("login.demo_as", "Se connecter en tant que", "Sign in as"),
    (
        "login.demo_unknown",
        "Cette personne n'est pas proposée par la démonstration.",
        "This person is not offered by the demonstration.",
    ),
    ("error.title", "Erreur", "Error"),
    (
        "error.forbidden",
        "Accès refusé : votre rôle ne permet pas d'ouvrir cette page.",
        "Access denied: your role does not allow this page.",
    ),
    (
        "error.csrf",
        "Formulaire expiré ou invalide. Rechargez la page et réessayez.",
        "The form has expired or is invalid. Reload the page and try again.",
    ),
    ("error.not_found", "Page introuvable.", "Page not found."),
    ("error.bad_request", "Requête invalide.", "Invalid request."),
    (
        "error.internal",
        "Erreur interne — référence",
        "Internal error — reference",
    ),
    (
        "error.internal_help",
        "Donnez cette référence au support informatique.",
        "Give this reference to IT support.",
    ),
    ("error.back", "Retour à l'accueil", "Back to the home page"),
    ("error.too_large", "Formulaire trop volumineux.", "Form too large."),
    ("bookings.title", "Mes réservations", "My bookings"),
    (
        "bookings.none",
        "Vous n'avez aucune réservation.",
        "You have no bookings.",
    ),
    ("bookings.resource", "Ressource", "Resource"),
    ("bookings.subject", "Objet", "Subject"),
    ("bookings.when", "Quand", "When"),
    ("bookings.status", "État", "Status"),
    ("bookings.why", "Explication", "Explanation"),
    ("bookings.details", "Détail de la décision", "Decision details"),
    ("bookings.occurrences", "occurrences", "occurrences"),
    ("bookings.no_subject", "(sans objet)", "(no subject)"),
    ("bookings.cancel", "Annuler cette réservation", "Cancel this booking"),
    (
        "bookings.cancelled",
        "La réservation est annulée.",
        "The booking is cancelled.",
    ),
    (
        "bookings.cancel_comment",
        "Commentaire pour l'organisateur (facultatif)",
        "Comment for the organiser (optional)",
    ),
    ("territory.title", "Territoire", "Territory"),
    (
        "territory.intro",
        "Les communes du territoire : un déplacement en véhicule vers une autre destination relève des circuits de validation « déplacement hors territoire ».",
        "The communes of the territory: a vehicle trip to any other destination comes under the \"trip outside the territory\" approval circuits.",
    ),
    ("territory.count", "Communes :", "Communes:"),
    ("territory.label", "Communes, une par ligne", "Communes, one a line"),
    (
        "territory.hint",
        "Nom ; code INSEE ; codes postaux ; autres noms. Seul le nom est obligatoire. Exemple : Saint-Denis ; 93066 ; 93200 93210 ; La Plaine Saint-Denis",
        "Name; INSEE code; postcodes; other names. Only the name is required. Example: Saint-Denis ; 93066 ; 93200 93210 ; La Plaine Saint-Denis",
    ),
    ("territory.save", "Enregistrer le territoire", "Save the territory"),
    (
        "territory.saved",
        "Le territoire est enregistré.",
        "The territory is saved.",
    ),
    (
        "territory.not_saved",
        "Rien n'est enregistré ; corrigez ces lignes :",
        "Nothing is saved; correct these lines:",
    ),
    ("territory.line", "Ligne", "Line"),
    (
        "territory.error.name",
        "le nom de la commune manque",
        "the commune's name is missing",
    ),
    (
        "territory.error.insee",
        "un code INSEE a cinq caractères (chiffres, ou 2A/2B pour la Corse)",
        "an INSEE code has five characters (digits, or 2A/2B for Corsica)",
    ),
    (
        "territory.error.postcode",
        "un code postal a cinq chiffres",
        "a postcode has five digits",
    ),
    (
        "territory.error.duplicate",
        "cette commune figure déjà plus haut",
        "this commune is already listed above",
    ),
    (
        "territory.error.empty",
        "Le territoire doit compter au moins une commune.",
        "The territory needs at least one commune.",
    ),
    ("nav.territory", "Territoire", "Territory"),
    (
        "bookings.cancel_comment_hint",
        "L'organisateur reçoit un message qui vous nomme, avec ce commentaire.",
        "The organiser gets a message naming you, with this comment.",
    ),
    ("status.accepted", "acceptée", "accepted"),
    ("status.partially_accepted", "acceptée en partie", "partially accepted"),
    ("status.declined", "refusée", "declined"),
    ("status.held", "en attente de validation", "awaiting approval"),
    ("status.cancelled", "annulée", "cancelled"),
    ("status.released", "libérée", "released"),
    ("outcome.accept", "Acceptée", "Accepted"),
    ("outcome.accept_partially", "Acceptée en partie", "Partially accepted"),
    ("outcome.decline", "Refusée", "Declined"),
    ("outcome.hold", "Mise en attente de validation", "Held for approval"),
    ("outcome.cancel", "Annulée", "Cancelled"),
    ("outcome.release", "Libérée", "Released"),
    (
        "outcome.approve",
        "Approuvée par un gestionnaire",
        "Approved by a manager",
    ),
    ("outcome.refuse", "Refusée par un gestionnaire", "Refused by a manager"),
    ("explain.title", "Explication de la décision", "Decision explained"),
    ("explain.request", "La demande", "The request"),
    ("explain.organiser", "Organisateur", "Organiser"),
    ("explain.attendees", "Participants", "Attendees"),
    ("explain.source", "Origine", "Source"),
    ("explain.requested_at", "Demandée le", "Requested on"),
    ("explain.occurrences", "Créneaux", "Time slots"),
    ("explain.decisions", "Décisions", "Decisions"),
    ("explain.decided_at", "Décidée le", "Decided on"),
    ("explain.decided_by", "Par", "By"),
    ("explain.reasons", "Motifs", "Reasons"),
    (
        "explain.no_reason",
        "Aucun motif : toutes les règles sont respectées.",
        "No reason: every rule is met.",
    ),
    ("explain.rules", "Règle par règle", "Rule by rule"),
    ("explain.rule", "Règle", "Rule"),
    ("explain.verdict", "Verdict", "Verdict"),
    ("explain.scope", "Fixée au niveau", "Set at"),
    (
        "explain.policy",
        "Règles appliquées à cette ressource",
        "Rules applied to this resource",
    ),
    (
        "explain.policy_intro",
        "Chaque valeur indique le niveau qui l'a fixée (la plus précise l'emporte).",
        "Each value shows the level that set it (the most specific wins).",
    ),
    ("explain.declined_occurrences", "Créneaux refusés", "Declined slots"),
    ("verdict.pass", "respectée", "met"),
    ("verdict.fail", "non respectée", "not met"),
    ("verdict.bypassed", "contournée (gestionnaire)", "bypassed (manager)"),
    ("verdict.not_applicable", "sans objet", "not applicable"),
    ("decided_by.engine", "moteur de règles", "rule engine"),
    ("decided_by.manager", "gestionnaire", "manager"),
    ("decided_by.circuit", "circuit de validation", "approval circuit"),
    ("decided_by.system", "système", "system"),
    ("source.exchange", "Outlook / Exchange", "Outlook / Exchange"),
    ("source.web", "site web", "web site"),
    ("policy.field", "Règle", "Rule"),
    ("policy.value", "Valeur", "Value"),
    ("policy.origin", "Origine", "Origin"),
    ("policy.all_day", "toute la journée", "all day"),
    ("policy.closed", "fermé", "closed"),
    ("policy.builtin", "valeur par défaut", "built-in default"),
    ("policy.set_here", "fixée ici", "set here"),
    ("policy.inherited", "héritée de", "inherited from"),
    ("scope.global", "Global", "Global"),
    ("scope.organisation", "Organisation", "Organisation"),
    ("scope.site", "Site", "Site"),
    ("scope.site_type", "Type sur un site", "Type at a site"),
    ("scope.resource_type", "Type de ressource", "Resource type"),
    ("scope.resource", "Ressource", "Resource"),
    ("resources.title", "Ressources", "Resources"),
    ("resources.new", "Nouvelle ressource", "New resource"),
    ("resources.name", "Nom", "Name"),
    (
        "resources.mailbox",
        "Adresse de la boîte aux lettres",
        "Mailbox address",
    ),
    ("resources.site", "Site", "Site"),
    ("resources.type", "Type", "Type"),
    ("resources.capacity", "Capacité", "Capacity"),
    ("resources.endpoint", "Serveur Exchange", "Exchange server"),
    ("resources.active", "Active", "Active"),
    ("resources.create", "Créer la ressource", "Create the resource"),
    ("resources.edit", "Modifier la ressource", "Edit the resource"),
    ("resources.save", "Enregistrer la ressource", "Save the resource"),
    ("resources.saved", "Ressource enregistrée.", "Resource saved."),
    (
        "resources.active_label",
        "Réservable (décochez pour la retirer des recherches et des décisions)",
        "Bookable (untick to take it out of searches and decisions)",
    ),
    ("resources.created", "Ressource créée.", "Resource created."),
    ("resources.none", "Aucune ressource.", "No resources."),
    ("resources.policy", "Règles", "Rules"),
    (
        "resources.duplicate",
        "Cette adresse de boîte aux lettres est déjà utilisée.",
        "This mailbox address is already used.",
    ),
    (
        "resources.invalid",
        "Vérifiez les champs : nom (1 à 200 caractères), adresse de messagerie valide, capacité positive.",
        "Check the fields: name (1 to 200 characters), valid e-mail address, positive capacity.",
    ),
    ("yes", "oui", "yes"),
    ("no", "non", "no"),
    ("policies.title", "Règles par niveau", "Policies by scope"),
    (
        "policies.intro",
        "Les règles s'héritent : global, puis organisation, site, type de ressource, ressource. Le niveau le plus précis l'emporte.",
        "Policies are inherited: global, then organisation, site, resource type, resource. The most specific level wins.",
    ),
    ("policies.scope_title", "Règles du niveau", "Policies of scope"),
    (
        "policies.effective",
        "Règles effectives de la ressource",
        "Effective policy of the resource",
    ),
    (
        "policies.here",
        "Valeurs fixées à ce niveau (JSON)",
        "Values set at this scope (JSON)",
    ),
    (
        "policies.here_help",
        "Un objet JSON ; un champ absent est hérité du niveau supérieur.",
        "A JSON object; a missing field is inherited from the scope above.",
    ),
    ("policies.save", "Enregistrer", "Save"),
    ("policies.saved", "Règles enregistrées.", "Policies saved."),
    ("policies.invalid", "Règles invalides :", "Invalid policies:"),
    (
        "policies.nothing_here",
        "Rien n'est fixé à ce niveau.",
        "Nothing is set at this scope.",
    ),
    ("grants.title", "Droits", "Grants"),
    (
        "grants.intro",
        "Associez des groupes de l'annuaire à des droits sur les ressources.",
        "Map directory groups to rights on resources.",
    ),
    ("grants.subject", "Groupe ou personne", "Group or person"),
    ("grants.scope", "Portée", "Scope"),
    ("grants.role", "Droit", "Right"),
    ("grants.delete", "Supprimer", "Delete"),
    ("grants.none", "Aucun droit défini.", "No grants."),
    (
        "grants.search",
        "Rechercher un groupe dans l'annuaire",
        "Search the directory for a group",
    ),
    ("grants.search_label", "Nom du groupe", "Group name"),
    ("grants.search_submit", "Rechercher", "Search"),
    ("grants.results", "Groupes trouvés", "Groups found"),
    ("grants.no_results", "Aucun groupe trouvé.", "No group found."),
    ("grants.directory", "Annuaire", "Directory"),
    ("grants.add", "Accorder", "Grant"),
    ("grants.created", "Droit accordé.", "Grant created."),
    ("grants.deleted", "Droit supprimé.", "Grant deleted."),
    (
        "grants.not_synced",
        "Ce groupe n'est pas encore synchronisé : réessayez après la prochaine synchronisation.",
        "This group is not synced yet: try again after the next sync.",
    ),
    (
        "grants.directory_error",
        "Annuaire injoignable :",
        "Directory unreachable:",
    ),
    ("role.book", "réserver", "book"),
    ("role.request", "demander (avec validation)", "request (with approval)"),
    ("role.manage", "gérer", "manage"),
    ("role.view", "consulter", "view"),
    ("role.deny", "interdire", "deny"),
    ("audit.title", "Journal d'audit", "Audit log"),
    ("audit.filters", "Filtres", "Filters"),
    ("audit.actor", "Auteur", "Actor"),
    ("audit.action", "Action", "Action"),
    ("audit.object", "Objet", "Object"),
    ("audit.from", "Du", "From"),
    ("audit.to", "Au", "To"),
    ("audit.at", "Date", "Date"),
    ("audit.details", "Détails", "Details"),
    ("audit.apply", "Filtrer", "Filter"),
    ("audit.any", "toutes", "any"),
    ("audit.none", "Aucune entrée.", "No entries."),
    ("search.title", "Rechercher et réserver", "Search and book"),
    ("search.type", "Type de ressource", "Resource type"),
    ("search.site", "Site", "Site"),
    ("search.any", "tous", "any"),
    ("search.date", "Date", "Date"),
    ("search.start", "Début", "Start"),
    ("search.end", "Fin", "End"),
    ("search.capacity", "Participants", "Attendees"),
    ("search.equipment", "Équipements", "Equipment"),
    (
        "attributes.title",
        "Attributs et équipements du type",
        "Attributes and equipment of the type",
    ),
    (
        "attributes.resource_title",
        "Attributs et équipements de la ressource",
        "Attributes and equipment of the resource",
    ),
    ("attributes.saved", "Attributs enregistrés.", "Attributes saved."),
    ("resources.attributes", "Équipements", "Equipment"),
    (
        "resources.import",
        "Importer des ressources (CSV)",
        "Import resources (CSV)",
    ),
    ("search.submit", "Chercher", "Search"),
    ("nav.calendar", "Calendriers", "Calendars"),
    (
        "calendar.title",
        "Calendriers de mes ressources",
        "Calendars of my resources",
    ),
    (
        "calendar.intro",
        "Les créneaux tenus sur les ressources que vous gérez, semaine par semaine, qu'ils viennent d'Outlook ou du site.",
        "The slots held on the resources you manage, week by week, whether booked in Outlook or on the site.",
    ),
    ("calendar.from", "À partir du", "From"),
    ("calendar.show", "Afficher", "Show"),
    ("calendar.weeks", "Semaines", "Weeks"),
    ("calendar.previous", "Semaine précédente", "Previous week"),
    ("calendar.next", "Semaine suivante", "Next week"),
    (
        "calendar.empty",
        "Aucun créneau tenu sur cette période.",
        "No slot held in this period.",
    ),
    ("calendar.when", "Créneau", "Slot"),
    ("calendar.subject", "Objet", "Subject"),
    ("calendar.organiser", "Organisateur", "Organiser"),
    ("calendar.status", "État", "State"),
    (
        "calendar.invalid",
        "Date invalide : utilisez le format AAAA-MM-JJ.",
        "Invalid date: use the YYYY-MM-DD format.",
    ),
    ("search.view", "Affichage", "View"),
    ("search.view_day", "Jour (heure par heure)", "Day (hour by hour)"),
    (
        "search.view_week",
        "Semaine (le créneau sur 7 jours)",
        "Week (the slot over 7 days)",
    ),
    (
        "search.week_caption",
        "Le créneau demandé sur les sept jours à partir de la date",
        "The requested slot on the seven days from the date",
    ),
    ("search.results", "Disponibilités", "Availability"),
    (
        "search.grid_caption",
        "Occupation de la journée, par heure (libre ou occupé)",
        "Occupancy of the day, by hour (free or busy)",
    ),
    ("search.free", "libre", "free"),
    ("search.busy", "occupé", "busy"),
    ("search.none", "Aucune ressource ne correspond.", "No resource matches."),
    ("search.book", "Réserver", "Book"),
    ("search.subject", "Objet de la réunion", "Meeting subject"),
    (
        "search.free_slot",
        "Libre sur le créneau demandé",
        "Free for the requested slot",
    ),
    (
        "search.busy_slot",
        "Occupée sur le créneau demandé",
        "Busy for the requested slot",
    ),
    ("search.invalid", "Date ou heures invalides.", "Invalid date or times."),
    ("book.title", "Résultat de la réservation", "Booking result"),
    ("book.repeat", "Répétition", "Repeat"),
    ("book.repeat_none", "Une seule fois", "Once"),
    ("book.repeat_daily", "Tous les jours", "Every day"),
    (
        "book.repeat_weekdays",
        "Tous les jours ouvrés (lundi au vendredi)",
        "Every working day (Monday to Friday)",
    ),
    (
        "book.repeat_weekly",
        "Chaque semaine, le même jour",
        "Every week, on the same day",
    ),
    ("book.until", "Jusqu'au (inclus)", "Until (included)"),
    ("book.count", "ou nombre de fois", "or number of times"),
    (
        "book.repeat_hint",
        "Pour une série, indiquez une date de fin ou un nombre de fois. Chaque date est décidée : celles qui sont prises vous sont signalées une à une.",
        "For a series, give an end date or a number of times. Each date is decided: those already taken are listed one by one.",
    ),
    ("book.repeat_invalid", "Répétition inconnue.", "Unknown repetition."),
    (
        "book.until_invalid",
        "La date de fin de la série doit suivre la première date (format AAAA-MM-JJ).",
        "The series' end date must follow its first date (YYYY-MM-DD).",
    ),
    (
        "book.count_invalid",
        "Le nombre de fois doit être un entier entre 2 et 260.",
        "The number of times must be a whole number from 2 to 260.",
    ),
    (
        "book.range_needed",
        "Pour une série, indiquez soit une date de fin, soit un nombre de fois (pas les deux).",
        "For a series, give either an end date or a number of times (not both).",
    ),
    (
        "book.series_too_long",
        "Une série réservée sur le site compte au plus 260 dates sur trois ans.",
        "A series booked on the site has at most 260 dates within three years.",
    ),
    ("approvals.title", "Demandes à valider", "Requests to approve"),
    ("approvals.none", "Aucune demande en attente.", "No pending requests."),
    (
        "approvals.comment",
        "Commentaire (envoyé à l'organisateur)",
        "Comment (sent to the organiser)",
    ),
    ("approvals.approve", "Approuver", "Approve"),
    ("approvals.refuse", "Refuser", "Refuse"),
    ("approvals.done", "Décision enregistrée.", "Decision recorded."),
    (
        "approvals.yours",
        "Votre réponse est attendue",
        "Your answer is awaited",
    ),
    (
        "approvals.managed",
        "Demandes en attente sur les ressources que vous gérez",
        "Requests held on the resources you manage",
    ),
    ("approvals.circuit", "Circuit de validation", "Approval circuit"),
    ("approvals.step", "Étape", "Step"),
    ("link.title", "Demande d'approbation", "Approval request"),
    ("link.for", "Réponse demandée à :", "Answer asked of:"),
    ("link.resource", "Ressource", "Resource"),
    ("link.when", "Date", "Date"),
    (
        "link.invalid",
        "Ce lien n'est pas valable : il n'a pas été émis par resa ou a été modifié.",
        "This link is not valid: resa did not issue it, or it was altered.",
    ),
    (
        "link.expired",
        "Ce lien a expiré. Répondez depuis la file des demandes à valider.",
        "This link has expired. Answer from the queue of requests to approve.",
    ),
    (
        "link.used",
        "Ce lien a déjà servi : chaque lien ne sert qu'une fois.",
        "This link has already been used: each link serves only once.",
    ),
    (
        "link.done",
        "Votre réponse est enregistrée. Merci.",
        "Your answer is recorded. Thank you.",
    ),
    ("nav.circuits", "Circuits", "Circuits"),
    ("nav.templates", "Messages", "Messages"),
    ("circuits.title", "Circuits de validation", "Approval circuits"),
    (
        "circuits.intro",
        "Un circuit s'applique aux demandes mises en attente d'approbation dont il remplit les conditions ; \
         modifier un circuit en crée une nouvelle version, les demandes en cours gardent la leur.",
        "A circuit applies to the requests held for approval whose conditions it meets; editing a circuit \
         makes a new version, requests under way keep theirs.",
    ),
    ("circuits.new", "Nouveau circuit", "New circuit"),
    (
        "circuits.none",
        "Aucun circuit : les gestionnaires valident.",
        "No circuit: managers approve.",
    ),
    ("circuits.edit", "Circuit de validation", "Approval circuit"),
    ("circuits.name", "Nom", "Name"),
    ("circuits.version", "Version", "Version"),
    ("circuits.steps", "Étapes", "Steps"),
    ("circuits.step", "Étape", "Step"),
    ("circuits.conditions", "Conditions", "Conditions"),
    (
        "circuits.conditions_help",
        "Toutes les conditions remplies choisissent ce circuit ; sans condition, il s'applique à tout.",
        "All the conditions met choose this circuit; without conditions it applies to everything.",
    ),
    ("circuits.state", "État", "State"),
    ("circuits.active", "Actif", "Active"),
    ("circuits.inactive", "Inactif", "Inactive"),
    ("circuits.activate", "Activer", "Activate"),
    ("circuits.deactivate", "Désactiver", "Deactivate"),
    ("circuits.general", "Le circuit", "The circuit"),
    ("circuits.label_fr", "Nom montré en français", "Name shown in French"),
    ("circuits.label_en", "Nom montré en anglais", "Name shown in English"),
    (
        "circuits.priority",
        "Priorité (la plus haute l'emporte)",
        "Priority (highest wins)",
    ),
    (
        "circuits.deadline",
        "Délai du circuit (heures)",
        "Circuit deadline (hours)",
    ),
    (
        "circuits.final_outcome",
        "Au délai du circuit",
        "At the circuit's deadline",
    ),
    ("circuits.outcome.decline", "refuser la demande", "decline the request"),
    ("circuits.outcome.accept", "accepter la demande", "accept the request"),
    ("circuits.any", "Toutes", "Any"),
    ("circuits.kind", "Genre de ressource", "Kind of resource"),
    ("circuits.kind.room", "Salle", "Room"),
    ("circuits.kind.vehicle", "Véhicule", "Vehicle"),
    ("circuits.kind.equipment", "Matériel", "Equipment"),
    ("circuits.site", "Site", "Site"),
    ("circuits.resource_type", "Type de ressource", "Resource type"),
    (
        "circuits.longer_than",
        "Durée supérieure à (minutes)",
        "Longer than (minutes)",
    ),
    (
        "circuits.more_occurrences",
        "Plus d'occurrences que",
        "More occurrences than",
    ),
    (
        "circuits.requester_group",
        "Demandeur membre du groupe (annuaire:groupe)",
        "Requester member of the group (directory:group)",
    ),
    (
        "circuits.outside_hours",
        "En dehors des heures d'ouverture",
        "Outside opening hours",
    ),
    ("circuits.recurring", "Réunion périodique", "Recurring meeting"),
    (
        "circuits.outside_territory",
        "Trajet hors du territoire",
        "Trip outside the territory",
    ),
    (
        "circuits.approvers",
        "Approbateurs (un par ligne)",
        "Approvers (one per line)",
    ),
    (
        "circuits.approvers_help",
        "Un approbateur par ligne : annuaire:compte (une personne, par exemple pc:carol), \
         groupe:annuaire:groupe (les membres d'un groupe), responsable (le responsable de l'organisateur dans \
         l'annuaire), gestionnaires (les gestionnaires de la ressource). Une étape sans approbateur ni suppléant \
         est ignorée.",
        "One approver per line: directory:account (a person, e.g. pc:carol), group:directory:group (a group's \
         members), manager (the organiser's manager in the directory), managers (the resource's managers). A \
         step without approvers or backup is ignored.",
    ),
    ("circuits.quorum", "Il faut l'accord de", "Needs the approval of"),
    ("circuits.quorum.one", "un seul approbateur", "one approver"),
    ("circuits.quorum.all", "tous les approbateurs", "all approvers"),
    (
        "circuits.step_reminder",
        "Rappel après (heures)",
        "Reminder after (hours)",
    ),
    (
        "circuits.step_deadline",
        "Délai de l'étape (heures)",
        "Step deadline (hours)",
    ),
    (
        "circuits.backup",
        "Suppléant (annuaire:compte)",
        "Backup (directory:account)",
    ),
    ("circuits.save", "Enregistrer le circuit", "Save the circuit"),
    ("circuits.saved", "Circuit enregistré.", "Circuit saved."),
    (
        "circuits.error.name",
        "Donnez un nom au circuit.",
        "Give the circuit a name.",
    ),
    (
        "circuits.error.no_step",
        "Un circuit a au moins une étape.",
        "A circuit has at least one step.",
    ),
    (
        "circuits.error.no_approver",
        "Chaque étape a au moins un approbateur ou un suppléant.",
        "Each step has at least one approver or a backup.",
    ),
    (
        "circuits.error.hours",
        "Les délais sont des nombres d'heures positifs.",
        "Delays are positive numbers of hours.",
    ),
    (
        "circuits.error.number",
        "Nombre positif attendu",
        "A positive number is expected",
    ),
    (
        "circuits.error.group",
        "Groupe inconnu des annuaires :",
        "Group unknown to the directories:",
    ),
    (
        "circuits.error.approver",
        "Approbateur inconnu à l'étape",
        "Unknown approver at step",
    ),
    (
        "circuits.error.backup",
        "Suppléant inconnu à l'étape",
        "Unknown backup at step",
    ),
    (
        "circuits.error.duplicate",
        "Un autre circuit porte déjà ce nom.",
        "Another circuit already has this name.",
    ),
    ("templates.title", "Modèles de messages", "Message templates"),
    (
        "templates.intro",
        "Les messages envoyés depuis la boîte de la ressource, pour chaque événement, en français et en anglais.",
        "The messages sent from the resource's mailbox, for each event, in French and English.",
    ),
    ("templates.edit", "Modèle de message", "Message template"),
    ("templates.event", "Événement", "Event"),
    ("templates.language", "Langue", "Language"),
    ("templates.subject", "Objet", "Subject"),
    ("templates.body", "Texte", "Text"),
    ("templates.state", "État", "State"),
    ("templates.customised", "modifié", "edited"),
    ("templates.default", "par défaut", "default"),
    ("templates.variables", "Variables", "Variables"),
    ("templates.preview", "Aperçu", "Preview"),
    ("templates.save", "Enregistrer", "Save"),
    (
        "templates.reset_button",
        "Revenir au texte par défaut",
        "Back to the default text",
    ),
    ("templates.saved", "Modèle enregistré.", "Template saved."),
    (
        "templates.reset",
        "Modèle remis par défaut.",
        "Template back to its default.",
    ),
    (
        "templates.empty",
        "L'objet et le texte sont obligatoires.",
        "The subject and the text are required.",
    ),
    ("templates.unknown", "Variables inconnues :", "Unknown variables:"),
    (
        "approvals.gone",
        "Cette demande n'est plus en attente.",
        "This request is no longer pending.",
    ),
    ("blackouts.title", "Fermetures", "Blackouts"),
    (
        "blackouts.intro",
        "Déclarez une période pendant laquelle une ressource que vous gérez ne peut pas être réservée.",
        "Declare a period during which a resource you manage cannot be booked.",
    ),
    ("blackouts.resource", "Ressource", "Resource"),
    ("blackouts.start", "Début (date et heure)", "Start (date and time)"),
    ("blackouts.end", "Fin (date et heure)", "End (date and time)"),
    ("blackouts.reason", "Motif", "Reason"),
    ("blackouts.create", "Déclarer la fermeture", "Declare the blackout"),
    ("blackouts.created", "Fermeture enregistrée.", "Blackout recorded."),
    (
        "blackouts.invalid",
        "Période invalide : la fin doit suivre le début.",
        "Invalid period: the end must follow the start.",
    ),
    (
        "blackouts.no_resource",
        "Vous ne gérez aucune ressource.",
        "You manage no resource.",
    ),
    ("admin.status_title", "État du service", "Service status"),
    ("admin.directories", "Annuaires", "Directories"),
    (
        "admin.mailboxes",
        "Boîtes aux lettres des ressources",
        "Resource mailboxes",
    ),
    ("admin.last_sync", "Dernière synchronisation", "Last sync"),
    (
        "admin.last_full_sync",
        "Dernière synchronisation complète",
        "Last full sync",
    ),
    ("admin.last_error", "Dernière erreur", "Last error"),
    ("admin.people", "Personnes actives", "Active people"),
    ("admin.groups", "Groupes", "Groups"),
    ("admin.state", "État", "State"),
    ("admin.stale", "à vérifier", "needs attention"),
    ("admin.ok", "à jour", "up to date"),
    ("admin.never", "jamais", "never"),
    ("admin.last_event", "Dernier événement", "Last event"),
    ("admin.lease", "Instance", "Instance"),
    ("admin.lag", "Retard", "Lag"),
    ("admin.lag_now", "à l'instant", "just now"),
    ("admin.days", "j", "d"),
    ("admin.late", "en retard", "late"),
    (
        "admin.drift",
        "Écarts avec le calendrier",
        "Differences with the calendar",
    ),
    (
        "admin.drift_intro",
        "Éléments que la réconciliation a trouvés dans un calendrier de ressource sans qu'ils soient passés par resa, ou l'inverse.",
        "Items reconciliation found in a resource calendar that did not come through resa, or the reverse.",
    ),
    ("admin.drift_count", "Écarts", "Differences"),
    ("admin.drift_none", "Aucun écart ouvert.", "No open difference."),
    ("admin.drift_kind", "Écart", "Difference"),
    ("admin.drift_found", "Constaté le", "Found on"),
    ("admin.drift_when", "Créneau", "Slot"),
    ("admin.drift_subject", "Objet", "Subject"),
    (
        "admin.drift_unknown_item",
        "réunion inconnue de resa",
        "meeting unknown to resa",
    ),
    (
        "admin.drift_missing_item",
        "réservation absente d'Exchange",
        "booking missing from Exchange",
    ),
    ("admin.drift_time_mismatch", "horaires différents", "different times"),
    ("admin.action", "Action", "Action"),
    ("admin.resync", "Resynchroniser", "Resync"),
    ("admin.resync_pending", "resynchronisation demandée", "resync requested"),
    (
        "admin.resync_requested",
        "Resynchronisation demandée : la boîte sera relue depuis le début à son prochain passage.",
        "Resync requested: the mailbox will be read again from the start on its next pass.",
    ),
    ("form.required", "obligatoire", "required"),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `tr("key")` of the templates and every `text("key")` of the
    /// web code names a text of the table.
    #[test]
    fn every_template_key_exists() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in ["templates", "src/web", "src/web/pages"] {
            for entry in std::fs::read_dir(root.join(dir)).expect("directory") {
                let path = entry.expect("entry").path();
                if path.is_file() && path.file_name().is_some_and(|n| n != "i18n.rs") {
                    files.push(path);
                }
            }
        }
        let mut missing = Vec::new();
        for path in files {
            let text = std::fs::read_to_string(&path).expect("file");
            let parts = text.split(".tr(\"").skip(1).chain(text.split(".text(\"").skip(1));
            for part in parts {
                let key = part.split('"').next().unwrap_or_default();
                if !TEXTS.iter().any(|(k, _, _)| *k == key) {
                    missing.push(format!("{}: {key}", path.display()));
                }
            }
        }
        assert!(missing.is_empty(), "missing texts: {missing:?}");
    }

    #[test]
    fn keys_are_unique() {
        let mut keys: Vec<&str> = TEXTS.iter().map(|(k, _, _)| *k).collect();
        keys.sort_unstable();
        let before = keys.len();
        keys.dedup();
        assert_eq!(before, keys.len());
    }
}
