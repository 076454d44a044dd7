//! What a demo seeding is asked for and what it reports back.

pub const ENDPOINTS: usize = 200;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub accounts: usize,
    pub events: u64,
    /// Events are spread over this many UTC days ending today.
    pub days: u32,
    /// The same seed gives the same data (apart from ids and key secrets).
    pub seed: u64,
    /// Password of every demo user.
    pub password: String,
}

#[derive(Debug, Clone)]
pub struct DemoSummary {
    pub accounts: usize,
    pub users: usize,
    pub keys: usize,
    pub events: u64,
    pub admin_email: String,
    /// A key of the first account, to try the ingestion routes with.
    pub sample_key: Option<String>,
    pub seconds: f64,
}
