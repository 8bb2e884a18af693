//! The scheduler: starts campaign runs when their cron says so, in each campaign's zone.
//!
//! Fire times are handled once: a run is recorded under (campaign, fire time) together with its
//! jobs, and the time up to which the schedule was handled is kept in the database, so a
//! restart neither repeats a run nor (with `catch_up: once`) loses the last missed one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};

use crate::campaigns::{self, Campaign};
use crate::clock::Clock;
use crate::rules::RuleSet;
use crate::store::{Store, StoreResult};

/// How often schedules are looked at; also the finest schedule that keeps its second.
const TICK: Duration = Duration::from_millis(500);
/// How long the scheduler's lease lasts: another instance takes over this long after its
/// holder stopped renewing it.
const LEASE: chrono::Duration = chrono::Duration::seconds(15);
/// The lease is renewed once less than this is left of it.
const RENEW: chrono::Duration = chrono::Duration::seconds(10);

/// The campaign scheduler worker.
pub struct Scheduler {
    pub store: Arc<dyn Store>,
    pub rules: watch::Receiver<Arc<RuleSet>>,
    pub clock: Arc<dyn Clock>,
    /// Woken when a run wrote jobs.
    pub delivery: Arc<Notify>,
    /// Lists a group's members for a `group_members` audience.
    pub groups: Option<Arc<dyn crate::campaigns::GroupDirectory>>,
}

impl Scheduler {
    /// Runs until `shutdown` turns true. Of several instances sharing a database, the one
    /// that holds the scheduler's lease runs the schedules; the others wait to take it over.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut checked: HashMap<String, DateTime<Utc>> = HashMap::new();
        let mut held_until: Option<DateTime<Utc>> = None;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let now = self.clock.now();
            if held_until.is_none_or(|until| until - now < RENEW) {
                let until = now + LEASE;
                match self.store.hold_lease("scheduler", until, now).await {
                    Ok(true) => {
                        if held_until.is_none() {
                            tracing::info!("this instance runs the campaign schedules");
                        }
                        held_until = Some(until);
                    }
                    Ok(false) => {
                        // Another instance runs them; what this one knew may be stale when
                        // it takes over.
                        held_until = None;
                        checked.clear();
                    }
                    Err(err) => {
                        tracing::error!("cannot renew the scheduler's lease: {err}");
                        held_until = held_until.filter(|until| *until > now);
                    }
                }
            }
            if held_until.is_some() {
                self.tick_all(&mut checked).await;
            }
            tokio::select! {
                () = tokio::time::sleep(TICK) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Starts the runs that are due now. `checked` caches how far each schedule was handled.
    pub async fn tick_all(&self, checked: &mut HashMap<String, DateTime<Utc>>) {
        let set = self.rules.borrow().clone();
        if set.campaigns.is_empty() {
            return;
        }
        let paused = match self.store.paused_campaigns().await {
            Ok(paused) => paused,
            Err(err) => {
                // Not knowing which campaigns are paused, none runs this tick.
                tracing::error!("cannot read which campaigns are paused, will retry: {err}");
                return;
            }
        };
        for campaign in set.campaigns.iter().filter(|c| c.enabled) {
            if paused.iter().any(|(name, _)| *name == campaign.name) {
                // Its fire times pass; resuming marks them handled, so none is sent late,
                // and the mark is read again then.
                checked.remove(&campaign.name);
                continue;
            }
            if let Err(err) = self.tick(&set, campaign, checked).await {
                tracing::error!(campaign = %campaign.name, "campaign schedule failed, will retry: {err}");
            }
        }
    }

    async fn tick(
        &self,
        set: &RuleSet,
        campaign: &Campaign,
        checked: &mut HashMap<String, DateTime<Utc>>,
    ) -> StoreResult<()> {
        let now = self.clock.now();
        let last = match checked.get(&campaign.name) {
            Some(at) => *at,
            None => match self.store.campaign_checked(&campaign.name).await? {
                Some(at) => at,
                None => {
                    // A new campaign starts with its next fire time, not with the past.
                    self.store.set_campaign_checked(&campaign.name, now).await?;
                    checked.insert(campaign.name.clone(), now);
                    return Ok(());
                }
            },
        };
        if let Some((fire_at, trigger)) = campaign.due(last, now) {
            let groups = self.groups.as_deref();
            match campaigns::launch(
                self.store.as_ref(),
                set,
                campaign,
                fire_at,
                trigger,
                now,
                groups,
            )
            .await
            {
                Ok(Some(_)) => self.delivery.notify_one(),
                Ok(None) => {}
                Err(campaigns::PlanError::Store(err)) => return Err(err),
                // Safer to miss a fire time than to act on an audience not known: this run is
                // skipped and says why; the next fire time tries again.
                Err(campaigns::PlanError::Audience(why)) => {
                    tracing::error!(campaign = %campaign.name, "run at {fire_at} not planned: {why}");
                }
            }
            self.store.set_campaign_checked(&campaign.name, now).await?;
        } else if last < now - chrono::Duration::hours(1) {
            // Keep the stored mark recent, so downtime is measured from the last time we looked.
            self.store.set_campaign_checked(&campaign.name, now).await?;
        } else {
            checked.insert(campaign.name.clone(), last);
            return Ok(());
        }
        checked.insert(campaign.name.clone(), now);
        Ok(())
    }
}
