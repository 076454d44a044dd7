//! Who the demo data is about: the admin, the members of each account (their e-mails follow
//! from the account's number, so a summary can name them) and the accounts events are drawn for.

use crate::domain::plans::PlanCode;

pub const ADMIN_EMAIL: &str = "admin@demo.tally.test";

/// The e-mail of member `n` (from 0) of demo account `account` (from 0).
pub fn user_email(account: usize, n: usize) -> String {
    format!("user{n}.account{account:05}@demo.tally.test")
}

pub const MAX_USERS_PER_ACCOUNT: usize = 3;

/// How many members demo account `account` has: 1 to [`MAX_USERS_PER_ACCOUNT`], in turn.
pub fn users_in_account(account: usize) -> usize {
    1 + account % MAX_USERS_PER_ACCOUNT
}

/// A demo account as events are drawn for it: its keys and how busy it is.
pub(super) struct DemoAccount {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) plan: PlanCode,
    pub(super) keys: Vec<String>,
    pub(super) weight: f64,
    /// Monthly quota of a plan that refuses calls over it.
    pub(super) blocking_quota: Option<i64>,
}
