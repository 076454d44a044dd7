//! Billing: what the billing provider tells us (plan and subscription changes arriving through
//! its webhook) and, later, invoices and the closing of billing periods.

pub mod webhook;
