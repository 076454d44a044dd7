//! Plans by code, so a page of accounts reads the plan table once.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use crate::entity::plan;
use crate::error::AppError;

pub struct PlanLoader {
    db: DatabaseConnection,
}

impl PlanLoader {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

impl Loader<String> for PlanLoader {
    type Value = plan::Model;
    type Error = Arc<AppError>;

    async fn load(&self, codes: &[String]) -> Result<HashMap<String, plan::Model>, Self::Error> {
        let plans = plan::Entity::find()
            .filter(plan::Column::Code.is_in(codes.iter().cloned()))
            .all(&self.db)
            .await
            .map_err(|err| Arc::new(AppError::from(err)))?;
        Ok(plans.into_iter().map(|p| (p.code.clone(), p)).collect())
    }
}
