//! Billing: invoices for ended periods, the runs that close periods, and what the billing provider
//! tells us (plan and subscription changes arriving through its webhook).

pub mod close;
pub mod history;
pub mod invoice;
pub mod webhook;
