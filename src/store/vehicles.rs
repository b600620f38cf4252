//! Vehicles and loaned equipment: vehicle data, drivers' licences, pools and
//! the member chosen for a pool booking, trip details, and the figures of the
//! vehicle reports.
//!
//! The functions taking a transaction are the vehicle steps of
//! [`Store::record_request`](super::Store::record_request): they run inside
//! its one transaction, so a pool's choice, the licence check and the
//! acceptance's key instructions are decided and written with the booking.
//! Check-out, return and check-in live in [`super::checkin`].

use super::bookings::range;
use super::{Result, Store, StoreError};
use crate::domain::Organiser;
use crate::domain::policy::EffectivePolicy;
use crate::domain::reason::Lang;
use crate::domain::vehicles::{Candidate, DriverLicence, Energy, Handover, LicenceCheck, LicenceClass};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

/// A vehicle's data, as a manager enters it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VehicleData {
    pub resource_id: Uuid,
    pub plate: String,
    pub seats: u32,
    pub energy: Energy,
    pub range_km: Option<u32>,
    pub licence_class: Option<LicenceClass>,
    pub home_site_id: Option<Uuid>,
    pub key_location: Option<String>,
    pub odometer_km: Option<u32>,
    /// How long a full charge takes, for an electric vehicle's buffer.
    pub full_charge_minutes: Option<u32>,
}

/// A vehicle with its resource's name and site, for lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vehicle {
    pub data: VehicleData,
    pub name: String,
    pub site_name: String,
    pub mailbox_smtp: String,
}

/// Where a person's licence data came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LicenceSource {
    Manager,
    Directory,
}

impl LicenceSource {
    fn as_str(self) -> &'static str {
        match self {
            LicenceSource::Manager => "manager",
            LicenceSource::Directory => "directory",
        }
    }
}

/// The trip details of a vehicle booking.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TripDetails {
    pub destination: Option<String>,
    pub declared_distance_km: Option<u32>,
    pub passengers: Option<u32>,
}

/// What a pool mailbox's request becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolChoice {
    /// The resource is not a pool: it is booked itself.
    NotPool,
    /// This member is booked.
    Member(Uuid),
    /// No member can take the request.
    NoneFree,
}

/// Distance, duration and count of trips of one vehicle (or organisation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistanceRow {
    pub name: String,
    pub trips: i64,
    pub distance_km: i64,
}

/// A released occurrence (no check-in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoShowRow {
    pub resource: String,
    pub organiser: String,
    pub start: DateTime<Utc>,
}

/// A return that reported damage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamageRow {
    pub resource: String,
    pub returned_at: DateTime<Utc>,
    pub damage: String,
    pub photos: i64,
    pub checkout_id: Uuid,
}

/// A pool of vehicles, for the web form that asks for "a car at this site".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolRow {
    pub id: Uuid,
    pub name: String,
    pub site: String,
}

/// How much of a pool's capacity was booked over a period.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolUseRow {
    pub pool: String,
    pub members: i64,
    pub booked_hours: f64,
    /// Booked hours over (members × hours in the period), in percent.
    pub utilisation_pct: f64,
}

pub(super) fn to_u32(v: Option<i32>) -> Option<u32> {
    v.and_then(|v| u32::try_from(v).ok())
}

pub(super) fn to_i32(v: Option<u32>) -> Option<i32> {
    v.map(|v| i32::try_from(v).unwrap_or(i32::MAX))
}

fn vehicle_from_row(r: &sqlx::postgres::PgRow) -> Result<VehicleData> {
    let energy: String = r.try_get("energy")?;
    let class: Option<String> = r.try_get("licence_class")?;
    Ok(VehicleData {
        resource_id: r.try_get("resource_id")?,
        plate: r.try_get("plate")?,
        seats: to_u32(Some(r.try_get("seats")?)).unwrap_or(1),
        energy: Energy::parse(&energy).ok_or_else(|| StoreError::Invalid(format!("energy {energy}")))?,
        range_km: to_u32(r.try_get("range_km")?),
        licence_class: class.as_deref().and_then(LicenceClass::parse),
        home_site_id: r.try_get("home_site_id")?,
        key_location: r.try_get("key_location")?,
        odometer_km: to_u32(r.try_get("odometer_km")?),
        full_charge_minutes: to_u32(r.try_get("full_charge_minutes")?),
    })
}

const VEHICLE_COLUMNS: &str = "v.resource_id, v.plate, v.seats, v.energy, v.range_km, v.licence_class, v.home_site_id,
     v.key_location, v.odometer_km, v.full_charge_minutes";

impl Store {
    /// The active pools whose members are vehicles, by site and name.
    pub async fn vehicle_pools(&self) -> Result<Vec<PoolRow>> {
        let rows = sqlx::query(
            "SELECT r.id, r.name, s.name AS site FROM resources r JOIN sites s ON s.id = r.site_id
             WHERE r.is_pool AND r.active
               AND EXISTS (SELECT 1 FROM pool_members m JOIN vehicles v ON v.resource_id = m.member_id
                           WHERE m.pool_id = r.id)
             ORDER BY s.name, r.name",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PoolRow {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    site: r.try_get("site")?,
                })
            })
            .collect()
    }

    /// Creates or replaces a vehicle's data. The resource must be of the
    /// vehicle category.
    pub async fn set_vehicle(&self, v: &VehicleData) -> Result<()> {
        let category: Option<String> = sqlx::query_scalar(
            "SELECT t.category FROM resources r JOIN resource_types t ON t.id = r.resource_type_id WHERE r.id = $1",
        )
        .bind(v.resource_id)
        .fetch_optional(self.pool())
        .await?;
        match category.as_deref() {
            None => return Err(StoreError::NotFound(format!("resource {}", v.resource_id))),
            Some("vehicle") => {}
            Some(_) => return Err(StoreError::Invalid("not a vehicle".into())),
        }
        let plate = v.plate.trim().to_uppercase();
        if plate.is_empty() {
            return Err(StoreError::Invalid("empty plate".into()));
        }
        sqlx::query(
            "INSERT INTO vehicles (resource_id, plate, seats, energy, range_km, licence_class, home_site_id,
                                   key_location, odometer_km, full_charge_minutes)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (resource_id) DO UPDATE SET plate = EXCLUDED.plate, seats = EXCLUDED.seats,
                 energy = EXCLUDED.energy, range_km = EXCLUDED.range_km, licence_class = EXCLUDED.licence_class,
                 home_site_id = EXCLUDED.home_site_id, key_location = EXCLUDED.key_location,
                 odometer_km = coalesce(EXCLUDED.odometer_km, vehicles.odometer_km),
                 full_charge_minutes = EXCLUDED.full_charge_minutes",
        )
        .bind(v.resource_id)
        .bind(plate)
        .bind(to_i32(Some(v.seats)))
        .bind(v.energy.as_str())
        .bind(to_i32(v.range_km))
        .bind(v.licence_class.map(|c| c.as_str()))
        .bind(v.home_site_id)
        .bind(v.key_location.as_deref().map(str::trim).filter(|s| !s.is_empty()))
        .bind(to_i32(v.odometer_km))
        .bind(to_i32(v.full_charge_minutes))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// One vehicle's data.
    pub async fn vehicle(&self, resource_id: Uuid) -> Result<Option<VehicleData>> {
        let row = sqlx::query(&format!(
            "SELECT {VEHICLE_COLUMNS} FROM vehicles v WHERE v.resource_id = $1"
        ))
        .bind(resource_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(vehicle_from_row).transpose()
    }

    /// Every vehicle, by site then name.
    pub async fn vehicles(&self) -> Result<Vec<Vehicle>> {
        let rows = sqlx::query(&format!(
            "SELECT {VEHICLE_COLUMNS}, r.name, r.mailbox_smtp, s.name AS site_name
             FROM vehicles v JOIN resources r ON r.id = v.resource_id JOIN sites s ON s.id = r.site_id
             ORDER BY s.name, r.name"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Vehicle {
                    data: vehicle_from_row(r)?,
                    name: r.try_get("name")?,
                    site_name: r.try_get("site_name")?,
                    mailbox_smtp: r.try_get("mailbox_smtp")?,
                })
            })
            .collect()
    }

    /// Records a driver's licence classes and last valid day.
    pub async fn set_driver_licence(
        &self,
        person_id: Uuid,
        licence: &DriverLicence,
        source: LicenceSource,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let classes: Vec<&str> = licence.classes.iter().map(|c| c.as_str()).collect();
        let done = sqlx::query(
            "UPDATE people SET licence_classes = $2, licence_expires_on = $3, licence_source = $4,
                    licence_updated_at = $5 WHERE id = $1",
        )
        .bind(person_id)
        .bind(&classes)
        .bind(licence.expires_on)
        .bind(source.as_str())
        .bind(now)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("person {person_id}")));
        }
        Ok(())
    }

    /// A person's licence, `None` when nothing is recorded.
    pub async fn driver_licence(&self, person_id: Uuid) -> Result<Option<DriverLicence>> {
        let mut conn = self.pool().acquire().await?;
        driver_of(&mut conn, person_id).await
    }

    /// Makes `pool_id` a pool standing for `members` (replacing its members).
    pub async fn set_pool_members(&self, pool_id: Uuid, members: &[Uuid]) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE resources SET is_pool = true WHERE id = $1")
            .bind(pool_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM pool_members WHERE pool_id = $1")
            .bind(pool_id)
            .execute(&mut *tx)
            .await?;
        for m in members {
            sqlx::query("INSERT INTO pool_members (pool_id, member_id) VALUES ($1, $2)")
                .bind(pool_id)
                .bind(m)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The member a pool booking was given, with the declared distance.
    pub async fn pool_assignment(&self, booking_id: Uuid) -> Result<Option<(Uuid, Option<u32>)>> {
        let row = sqlx::query("SELECT member_id, declared_distance_km FROM pool_assignments WHERE booking_id = $1")
            .bind(booking_id)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| Ok((r.try_get("member_id")?, to_u32(r.try_get("declared_distance_km")?))))
            .transpose()
    }

    /// resa's public address, used for links in messages.
    pub async fn set_public_url(&self, url: Option<&str>) -> Result<()> {
        sqlx::query(
            "INSERT INTO vehicle_settings (singleton, public_url) VALUES (true, $1)
             ON CONFLICT (singleton) DO UPDATE SET public_url = EXCLUDED.public_url",
        )
        .bind(url.map(|u| u.trim_end_matches('/')))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A booking's trip details.
    pub async fn trip_details(&self, booking_id: Uuid) -> Result<Option<TripDetails>> {
        let row =
            sqlx::query("SELECT destination, declared_distance_km, passengers FROM trip_details WHERE booking_id = $1")
                .bind(booking_id)
                .fetch_optional(self.pool())
                .await?;
        row.map(|r| {
            Ok(TripDetails {
                destination: r.try_get("destination")?,
                declared_distance_km: to_u32(r.try_get("declared_distance_km")?),
                passengers: to_u32(r.try_get("passengers")?),
            })
        })
        .transpose()
    }

    /// Saves a booking's trip details.
    pub async fn set_trip_details(&self, booking_id: Uuid, t: &TripDetails, now: DateTime<Utc>) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        upsert_trip(&mut tx, booking_id, t, now).await?;
        // A destination outside the territory may send the booking to approval.
        super::territory::after_trip_details(&mut tx, self.link_signer(), booking_id, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Distance driven per vehicle (odometer in minus out) over `[from, to)`.
    pub async fn distance_per_vehicle(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<DistanceRow>> {
        let rows = sqlx::query(
            "SELECT r.name, count(*) AS trips, coalesce(sum(c.odometer_in_km - c.odometer_out_km), 0)::bigint AS km
             FROM checkouts c JOIN resources r ON r.id = c.resource_id
             WHERE c.returned_at IS NOT NULL AND c.out_at >= $1 AND c.out_at < $2
               AND c.odometer_in_km IS NOT NULL AND c.odometer_out_km IS NOT NULL
             GROUP BY r.name ORDER BY km DESC, r.name",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await?;
        distance_rows(rows)
    }

    /// Distance driven per organisation of the organiser's directory.
    pub async fn distance_per_organisation(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<DistanceRow>> {
        let rows = sqlx::query(
            "SELECT coalesce(org.name, d.name, '—') AS name, count(*) AS trips,
                    coalesce(sum(c.odometer_in_km - c.odometer_out_km), 0)::bigint AS km
             FROM checkouts c
             JOIN occurrences o ON o.id = c.occurrence_id
             JOIN bookings b ON b.id = o.booking_id
             LEFT JOIN people p ON p.id = b.organiser_person_id
             LEFT JOIN directories d ON d.id = p.directory_id
             LEFT JOIN organisations org ON org.id = d.organisation_id
             WHERE c.returned_at IS NOT NULL AND c.out_at >= $1 AND c.out_at < $2
               AND c.odometer_in_km IS NOT NULL AND c.odometer_out_km IS NOT NULL
             GROUP BY 1 ORDER BY km DESC, 1",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await?;
        distance_rows(rows)
    }

    /// Occurrences released for want of a check-in, latest first.
    pub async fn no_shows(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<NoShowRow>> {
        let rows = sqlx::query(
            "SELECT r.name, coalesce(b.organiser_name, b.organiser_address) AS organiser, lower(o.period) AS start
             FROM occurrences o JOIN bookings b ON b.id = o.booking_id JOIN resources r ON r.id = o.resource_id
             WHERE o.status = 'released' AND o.checked_in_at IS NULL AND o.period && $1
             ORDER BY lower(o.period) DESC LIMIT 500",
        )
        .bind(range(from, to))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(NoShowRow {
                    resource: r.try_get("name")?,
                    organiser: r.try_get("organiser")?,
                    start: r.try_get("start")?,
                })
            })
            .collect()
    }

    /// Returns that reported damage, latest first.
    pub async fn damage_history(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<DamageRow>> {
        let rows = sqlx::query(
            "SELECT c.id, r.name, c.returned_at, c.damage,
                    (SELECT count(*) FROM damage_photos p WHERE p.checkout_id = c.id) AS photos
             FROM checkouts c JOIN resources r ON r.id = c.resource_id
             WHERE c.damage IS NOT NULL AND c.returned_at >= $1 AND c.returned_at < $2
             ORDER BY c.returned_at DESC LIMIT 500",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(DamageRow {
                    checkout_id: r.try_get("id")?,
                    resource: r.try_get("name")?,
                    returned_at: r.try_get("returned_at")?,
                    damage: r.try_get("damage")?,
                    photos: r.try_get("photos")?,
                })
            })
            .collect()
    }

    /// Booked hours of each pool's members over `[from, to)`, against what
    /// the members could have given.
    pub async fn pool_utilisation(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<PoolUseRow>> {
        let rows = sqlx::query(
            "SELECT p.name, count(DISTINCT m.member_id) AS members,
                    coalesce(sum(extract(epoch FROM (least(upper(o.period), $2) - greatest(lower(o.period), $1)))), 0)::float8
                        / 3600.0 AS hours
             FROM resources p
             JOIN pool_members m ON m.pool_id = p.id
             LEFT JOIN occurrences o ON o.resource_id = m.member_id AND o.status = 'accepted' AND o.period && $3
             WHERE p.is_pool
             GROUP BY p.id, p.name ORDER BY p.name",
        )
        .bind(from)
        .bind(to)
        .bind(range(from, to))
        .fetch_all(self.pool())
        .await?;
        let period_hours = (to - from).num_minutes() as f64 / 60.0;
        rows.into_iter()
            .map(|r| {
                let members: i64 = r.try_get("members")?;
                let hours: f64 = r.try_get("hours")?;
                let capacity = members as f64 * period_hours;
                Ok(PoolUseRow {
                    pool: r.try_get("name")?,
                    members,
                    booked_hours: hours,
                    utilisation_pct: if capacity > 0.0 { hours * 100.0 / capacity } else { 0.0 },
                })
            })
            .collect()
    }
}

fn distance_rows(rows: Vec<sqlx::postgres::PgRow>) -> Result<Vec<DistanceRow>> {
    rows.into_iter()
        .map(|r| {
            Ok(DistanceRow {
                name: r.try_get("name")?,
                trips: r.try_get("trips")?,
                distance_km: r.try_get("km")?,
            })
        })
        .collect()
}

async fn driver_of(conn: &mut sqlx::PgConnection, person_id: Uuid) -> Result<Option<DriverLicence>> {
    let row = sqlx::query("SELECT licence_classes, licence_expires_on FROM people WHERE id = $1")
        .bind(person_id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let classes: Option<Vec<String>> = row.try_get("licence_classes")?;
    let expires_on: Option<NaiveDate> = row.try_get("licence_expires_on")?;
    Ok(classes.map(|cs| DriverLicence {
        classes: cs.iter().filter_map(|c| LicenceClass::parse(c)).collect(),
        expires_on,
    }))
}

async fn upsert_trip(
    tx: &mut Transaction<'_, Postgres>,
    booking_id: Uuid,
    t: &TripDetails,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO trip_details (booking_id, destination, declared_distance_km, passengers, updated_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (booking_id) DO UPDATE SET destination = EXCLUDED.destination,
             declared_distance_km = EXCLUDED.declared_distance_km, passengers = EXCLUDED.passengers,
             updated_at = EXCLUDED.updated_at",
    )
    .bind(booking_id)
    .bind(t.destination.as_deref().map(str::trim).filter(|s| !s.is_empty()))
    .bind(to_i32(t.declared_distance_km))
    .bind(to_i32(t.passengers))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The distance of a request: the trip details of the booking it updates
/// when given, else a distance stated in the subject ("… 120 km").
pub(crate) async fn declared_distance(
    tx: &mut Transaction<'_, Postgres>,
    replaces: Option<Uuid>,
    subject: Option<&str>,
) -> Result<Option<u32>> {
    if let Some(b) = replaces {
        let d: Option<Option<i32>> =
            sqlx::query_scalar("SELECT declared_distance_km FROM trip_details WHERE booking_id = $1")
                .bind(b)
                .fetch_optional(&mut **tx)
                .await?;
        if let Some(d) = to_u32(d.flatten()) {
            return Ok(Some(d));
        }
    }
    Ok(subject.and_then(crate::domain::vehicles::distance_in_text))
}

/// Chooses the member a request to a pool mailbox books (see
/// [`crate::domain::vehicles::choose`]). A member is free when nothing holds
/// any part of `[lo, hi)`; an update keeps its member when it is still free.
pub(crate) async fn pool_choice(
    tx: &mut Transaction<'_, Postgres>,
    pool_id: Uuid,
    organiser: &Organiser,
    (lo, hi): (DateTime<Utc>, DateTime<Utc>),
    distance_km: Option<u32>,
    replaces: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<PoolChoice> {
    let is_pool: bool = sqlx::query_scalar("SELECT is_pool FROM resources WHERE id = $1")
        .bind(pool_id)
        .fetch_optional(&mut **tx)
        .await?
        .unwrap_or(false);
    if !is_pool {
        return Ok(PoolChoice::NotPool);
    }
    let rows = sqlx::query(
        "SELECT r.id, r.name, v.energy, v.range_km, v.licence_class,
                NOT EXISTS (SELECT 1 FROM occurrences o WHERE o.resource_id = r.id AND o.status IN ('accepted', 'held')
                            AND o.blocked && $2 AND o.booking_id IS DISTINCT FROM $3) AS free,
                coalesce((SELECT sum(extract(epoch FROM upper(o.period) - lower(o.period)))
                          FROM occurrences o WHERE o.resource_id = r.id AND o.status = 'accepted'
                            AND o.period && $4 AND o.booking_id IS DISTINCT FROM $3), 0)::float8 / 60.0 AS used
         FROM pool_members m JOIN resources r ON r.id = m.member_id LEFT JOIN vehicles v ON v.resource_id = r.id
         WHERE m.pool_id = $1 AND r.active
         ORDER BY r.name",
    )
    .bind(pool_id)
    .bind(range(lo, hi.max(lo + Duration::seconds(1))))
    .bind(replaces)
    .bind(range(now - Duration::days(30), now + Duration::days(30)))
    .fetch_all(&mut **tx)
    .await?;
    let driver = match organiser {
        Organiser::Known { person, .. } => driver_of(tx, *person).await?,
        _ => None,
    };
    let last_day = hi.date_naive();
    let mut candidates = Vec::with_capacity(rows.len());
    for r in rows {
        let energy: Option<String> = r.try_get("energy")?;
        let class: Option<String> = r.try_get("licence_class")?;
        let licence_ok = match class.as_deref().and_then(LicenceClass::parse) {
            None => true,
            Some(required) => {
                let check = LicenceCheck {
                    required,
                    driver: driver.clone(),
                };
                crate::domain::vehicles::licence(&check, last_day).is_none()
            }
        };
        let used: f64 = r.try_get("used")?;
        candidates.push(Candidate {
            resource: r.try_get("id")?,
            name: r.try_get("name")?,
            energy: energy.as_deref().and_then(Energy::parse).unwrap_or(Energy::Petrol),
            range_km: to_u32(r.try_get("range_km")?),
            free: r.try_get("free")?,
            licence_ok,
            used_minutes: used as i64,
        });
    }
    // An update keeps the member it was given if that one is still free.
    if let Some(b) = replaces {
        let previous: Option<Uuid> = sqlx::query_scalar("SELECT member_id FROM pool_assignments WHERE booking_id = $1")
            .bind(b)
            .fetch_optional(&mut **tx)
            .await?;
        if let Some(p) = previous
            && candidates.iter().any(|c| c.resource == p && c.free && c.licence_ok)
        {
            return Ok(PoolChoice::Member(p));
        }
    }
    Ok(match crate::domain::vehicles::choose(&candidates, distance_km) {
        Some(m) => PoolChoice::Member(m),
        None => PoolChoice::NoneFree,
    })
}

/// The licence check for a vehicle that needs a licence; `None` for a
/// resource that needs none.
pub(crate) async fn licence_check(
    tx: &mut Transaction<'_, Postgres>,
    resource_id: Uuid,
    organiser: &Organiser,
) -> Result<Option<LicenceCheck>> {
    let class: Option<Option<String>> = sqlx::query_scalar("SELECT licence_class FROM vehicles WHERE resource_id = $1")
        .bind(resource_id)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(required) = class.flatten().as_deref().and_then(LicenceClass::parse) else {
        return Ok(None);
    };
    let driver = match organiser {
        Organiser::Known { person, .. } => driver_of(tx, *person).await?,
        _ => None,
    };
    Ok(Some(LicenceCheck { required, driver }))
}

/// Widens an electric vehicle's buffer after a booking to the charging time
/// the declared distance needs, when that is longer than the policy's.
pub(crate) async fn adjust_policy(
    tx: &mut Transaction<'_, Postgres>,
    resource_id: Uuid,
    distance_km: Option<u32>,
    policy: &mut EffectivePolicy,
) -> Result<()> {
    let Some(distance) = distance_km else {
        return Ok(());
    };
    let row = sqlx::query("SELECT energy, range_km, full_charge_minutes FROM vehicles WHERE resource_id = $1")
        .bind(resource_id)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = row else { return Ok(()) };
    let energy: String = row.try_get("energy")?;
    let (Some(range_km), Some(full)) = (
        to_u32(row.try_get("range_km")?),
        to_u32(row.try_get("full_charge_minutes")?),
    ) else {
        return Ok(());
    };
    if !Energy::parse(&energy).is_some_and(|e| e.is_electric() || e == Energy::Assisted) {
        return Ok(());
    }
    let charging = crate::domain::vehicles::charging_buffer_minutes(distance, range_km, full);
    if charging > policy.buffer_after_minutes.value {
        policy.buffer_after_minutes.value = charging;
        policy.buffer_after_minutes.scope = crate::domain::Scope::Resource(resource_id);
        policy.buffer_after_minutes.builtin = false;
    }
    Ok(())
}

/// What an acceptance tells of a vehicle or an item: its name, plate, keys
/// and, for a vehicle, the link to its trip details. `None` for a room.
pub(crate) async fn handover(
    tx: &mut Transaction<'_, Postgres>,
    resource_id: Uuid,
    booking_id: Uuid,
    policy: &EffectivePolicy,
) -> Result<Option<Handover>> {
    let row = sqlx::query(
        "SELECT r.name, t.category, v.plate, v.key_location,
                (SELECT public_url FROM vehicle_settings) AS public_url
         FROM resources r JOIN resource_types t ON t.id = r.resource_type_id
         LEFT JOIN vehicles v ON v.resource_id = r.id WHERE r.id = $1",
    )
    .bind(resource_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let category: String = row.try_get("category")?;
    if category == "room" {
        return Ok(None);
    }
    let public_url: Option<String> = row.try_get("public_url")?;
    let trip_link = (category == "vehicle").then(|| {
        let path = format!("/vehicules/trajets/{booking_id}");
        match public_url {
            Some(base) => format!("{base}{path}"),
            None => path,
        }
    });
    Ok(Some(Handover {
        name: row.try_get("name")?,
        plate: row.try_get("plate")?,
        key_location: row.try_get("key_location")?,
        trip_link,
        trip_required: policy.require_trip_details.value,
    }))
}

/// Records the vehicle side of a decided request: the member a pool booking
/// was given, and a distance stated in the subject as the trip's declared
/// distance (the organiser can correct it with the trip-details form).
pub(crate) async fn record_vehicle_booking(
    tx: &mut Transaction<'_, Postgres>,
    booking_id: Uuid,
    pool: Option<(Uuid, Uuid)>,
    distance_km: Option<u32>,
    now: DateTime<Utc>,
) -> Result<()> {
    if let Some((pool_id, member_id)) = pool {
        sqlx::query(
            "INSERT INTO pool_assignments (booking_id, pool_id, member_id, declared_distance_km, chosen_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (booking_id) DO UPDATE SET member_id = EXCLUDED.member_id,
                 declared_distance_km = EXCLUDED.declared_distance_km, chosen_at = EXCLUDED.chosen_at",
        )
        .bind(booking_id)
        .bind(pool_id)
        .bind(member_id)
        .bind(to_i32(distance_km))
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    if let Some(d) = distance_km {
        sqlx::query(
            "INSERT INTO trip_details (booking_id, declared_distance_km, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (booking_id) DO NOTHING",
        )
        .bind(booking_id)
        .bind(to_i32(Some(d)))
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The handover lines appended to an acceptance, in the organiser's language.
pub(crate) fn handover_text(h: &Handover, lang: Lang) -> String {
    h.render(lang)
}

impl Store {
    /// Who organised a booking and which resource its occurrences hold (the
    /// member for a pool booking), for the trip-details page's rights.
    pub async fn trip_owner(&self, booking_id: Uuid) -> Result<Option<(Option<Uuid>, Uuid, String)>> {
        let row = sqlx::query(
            "SELECT b.organiser_person_id, coalesce(a.member_id, b.resource_id) AS resource_id, r.name
             FROM bookings b LEFT JOIN pool_assignments a ON a.booking_id = b.id
             JOIN resources r ON r.id = coalesce(a.member_id, b.resource_id)
             WHERE b.id = $1",
        )
        .bind(booking_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok((
                r.try_get("organiser_person_id")?,
                r.try_get("resource_id")?,
                r.try_get("name")?,
            ))
        })
        .transpose()
    }

    /// A person by any of their addresses, with their display name.
    pub async fn person_by_address(&self, address: &str) -> Result<Option<(Uuid, String)>> {
        let row = sqlx::query(
            "SELECT p.id, p.display_name FROM person_addresses a JOIN people p ON p.id = a.person_id
             WHERE a.address = lower($1) AND p.deleted_at IS NULL",
        )
        .bind(address.trim())
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| Ok((r.try_get("id")?, r.try_get("display_name")?)))
            .transpose()
    }
}
