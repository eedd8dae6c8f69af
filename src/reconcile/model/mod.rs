//! The ground floor of the reconciler: what a decision sees and says. The observation of a
//! cluster, where each managed change stands, the typed actions and Events, and the condition
//! vocabulary. It imports nothing of the reconciler; every other module of it builds on this.

pub mod action;
pub mod claim;
pub mod conditions;
pub mod event;
pub mod health;
pub mod observation;
pub mod pod;
pub mod states;
