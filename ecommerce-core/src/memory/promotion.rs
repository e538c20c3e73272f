use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::lock;
use crate::id::OrderId;
use crate::money::Money;
use crate::promotion::{
    Coupon, CouponCode, Limit, Promotion, PromotionError, PromotionId, PromotionStore,
    PromotionUse, Usage, UseState,
};

#[derive(Debug, Default)]
struct Counter {
    held: u32,
    committed: u32,
    spent: i64,
}

#[derive(Debug)]
struct OrderUses {
    uses: Vec<PromotionUse>,
    state: UseState,
    at: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct State {
    promotions: BTreeMap<PromotionId, Promotion>,
    automatic: BTreeSet<PromotionId>,
    coupons: HashMap<CouponCode, Coupon>,
    counters: HashMap<PromotionId, Counter>,
    customers: HashMap<(PromotionId, String), u32>,
    codes: HashMap<CouponCode, u32>,
    orders: HashMap<OrderId, OrderUses>,
    /// The orders whose uses are held, by when.
    held: BTreeSet<(DateTime<Utc>, OrderId)>,
}

impl State {
    /// The first limit a use would pass, or `None`.
    fn refused(&self, u: &PromotionUse) -> Result<Option<Limit>, PromotionError> {
        let p = self
            .promotions
            .get(&u.promotion)
            .ok_or_else(|| PromotionError::NotFound(u.promotion.clone()))?;
        let counter = self.counters.get(&u.promotion);
        let used = counter.map_or(0, |c| c.held + c.committed);
        if p.limits.total.is_some_and(|max| used >= max) {
            return Ok(Some(Limit::Total));
        }
        let mine = self
            .customers
            .get(&(u.promotion.clone(), u.customer.clone()))
            .copied()
            .unwrap_or(0);
        if p.limits.per_customer.is_some_and(|max| mine >= max) {
            return Ok(Some(Limit::PerCustomer));
        }
        if let Some(budget) = p.limits.budget {
            let spent = counter.map_or(0, |c| c.spent);
            if spent + u.amount.round().to_minor().unwrap_or(i64::MAX)
                > budget.round().to_minor().unwrap_or(0)
            {
                return Ok(Some(Limit::Budget));
            }
        }
        if let Some(code) = &u.code {
            let max = self.coupons.get(code).and_then(|c| c.max_uses);
            if max.is_some_and(|max| self.codes.get(code).copied().unwrap_or(0) >= max) {
                return Ok(Some(Limit::Code));
            }
        }
        Ok(None)
    }

    fn count(&mut self, u: &PromotionUse, up: bool) {
        let amount = u.amount.round().to_minor().unwrap_or(0);
        let step = |n: &mut u32| *n = if up { *n + 1 } else { n.saturating_sub(1) };
        step(
            self.customers
                .entry((u.promotion.clone(), u.customer.clone()))
                .or_default(),
        );
        if let Some(code) = &u.code {
            step(self.codes.entry(code.clone()).or_default());
        }
        let counter = self.counters.entry(u.promotion.clone()).or_default();
        counter.spent += if up { amount } else { -amount };
    }
}

/// Promotions, codes and usage in memory: every reservation is checked and counted under
/// one lock.
#[derive(Debug, Default)]
pub struct MemoryPromotions {
    state: Mutex<State>,
}

impl MemoryPromotions {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl PromotionStore for MemoryPromotions {
    async fn save_promotion(&self, promotion: &Promotion) -> Result<(), PromotionError> {
        promotion.validate()?;
        let mut state = lock(&self.state);
        if promotion.code_only {
            state.automatic.remove(&promotion.id);
        } else {
            state.automatic.insert(promotion.id.clone());
        }
        state
            .promotions
            .insert(promotion.id.clone(), promotion.clone());
        Ok(())
    }

    async fn promotions(&self) -> Result<Vec<Promotion>, PromotionError> {
        Ok(lock(&self.state).promotions.values().cloned().collect())
    }

    async fn automatic(&self) -> Result<Vec<Promotion>, PromotionError> {
        let state = lock(&self.state);
        Ok(state
            .automatic
            .iter()
            .filter_map(|id| state.promotions.get(id).cloned())
            .collect())
    }

    async fn promotion(&self, id: &PromotionId) -> Result<Option<Promotion>, PromotionError> {
        Ok(lock(&self.state).promotions.get(id).cloned())
    }

    async fn save_coupon(&self, coupon: &Coupon) -> Result<(), PromotionError> {
        let mut state = lock(&self.state);
        if !state.promotions.contains_key(&coupon.promotion) {
            return Err(PromotionError::NotFound(coupon.promotion.clone()));
        }
        if let Some(existing) = state.coupons.get(&coupon.code) {
            if existing.promotion != coupon.promotion {
                return Err(PromotionError::CodeTaken(coupon.code.clone()));
            }
        }
        state.coupons.insert(coupon.code.clone(), coupon.clone());
        Ok(())
    }

    async fn coupon(&self, code: &CouponCode) -> Result<Option<Coupon>, PromotionError> {
        Ok(lock(&self.state).coupons.get(code).cloned())
    }

    async fn reserve(&self, order: OrderId, uses: &[PromotionUse]) -> Result<(), PromotionError> {
        let mut state = lock(&self.state);
        if uses.is_empty() || state.orders.contains_key(&order) {
            return Ok(());
        }
        // Checked one by one as they are counted: two uses of one order may share a limit.
        for (i, u) in uses.iter().enumerate() {
            let refused = match state.refused(u) {
                Ok(None) => None,
                Ok(Some(limit)) => Some(PromotionError::Exhausted {
                    promotion: u.promotion.clone(),
                    code: u.code.clone(),
                    limit,
                }),
                Err(e) => Some(e),
            };
            if let Some(e) = refused {
                // All or nothing: the uses counted so far go back.
                for earlier in &uses[..i] {
                    state.count(earlier, false);
                    if let Some(c) = state.counters.get_mut(&earlier.promotion) {
                        c.held -= 1;
                    }
                }
                return Err(e);
            }
            state.count(u, true);
            state.counters.entry(u.promotion.clone()).or_default().held += 1;
        }
        let at = Utc::now();
        state.orders.insert(
            order,
            OrderUses {
                uses: uses.to_vec(),
                state: UseState::Held,
                at,
            },
        );
        state.held.insert((at, order));
        Ok(())
    }

    async fn commit(&self, order: OrderId) -> Result<(), PromotionError> {
        let mut state = lock(&self.state);
        let Some(entry) = state.orders.get_mut(&order) else {
            return Ok(());
        };
        if entry.state != UseState::Held {
            return Ok(());
        }
        entry.state = UseState::Committed;
        let (uses, at) = (entry.uses.clone(), entry.at);
        state.held.remove(&(at, order));
        for u in &uses {
            let c = state.counters.entry(u.promotion.clone()).or_default();
            c.held -= 1;
            c.committed += 1;
        }
        Ok(())
    }

    async fn release(&self, order: OrderId) -> Result<(), PromotionError> {
        let mut state = lock(&self.state);
        let Some(entry) = state.orders.get_mut(&order) else {
            return Ok(());
        };
        let was = entry.state;
        if was == UseState::Released {
            return Ok(());
        }
        entry.state = UseState::Released;
        let (uses, at) = (entry.uses.clone(), entry.at);
        state.held.remove(&(at, order));
        for u in &uses {
            state.count(u, false);
            let c = state.counters.entry(u.promotion.clone()).or_default();
            match was {
                UseState::Held => c.held -= 1,
                _ => c.committed -= 1,
            }
        }
        Ok(())
    }

    async fn uses_of(&self, order: OrderId) -> Result<Option<UseState>, PromotionError> {
        Ok(lock(&self.state).orders.get(&order).map(|o| o.state))
    }

    async fn usage(&self, promotion: &PromotionId) -> Result<Usage, PromotionError> {
        let state = lock(&self.state);
        let p = state
            .promotions
            .get(promotion)
            .ok_or_else(|| PromotionError::NotFound(promotion.clone()))?;
        let c = state.counters.get(promotion);
        Ok(Usage {
            held: c.map_or(0, |c| c.held),
            committed: c.map_or(0, |c| c.committed),
            spent: Money::from_minor(c.map_or(0, |c| c.spent), p.currency),
        })
    }

    async fn code_uses(&self, code: &CouponCode) -> Result<u32, PromotionError> {
        Ok(lock(&self.state).codes.get(code).copied().unwrap_or(0))
    }

    async fn held_before(
        &self,
        cutoff: DateTime<Utc>,
        after: Option<(DateTime<Utc>, OrderId)>,
        limit: usize,
    ) -> Result<Vec<(DateTime<Utc>, OrderId)>, PromotionError> {
        let state = lock(&self.state);
        let from = match after {
            Some(after) => std::ops::Bound::Excluded(after),
            None => std::ops::Bound::Unbounded,
        };
        Ok(state
            .held
            .range((from, std::ops::Bound::Unbounded))
            .take_while(|(at, _)| *at < cutoff)
            .take(limit)
            .copied()
            .collect())
    }
}
