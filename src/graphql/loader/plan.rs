//! Plans by code, so a page of accounts reads the plan table once.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::domain::error::DomainError;
use crate::entity::plan;
use crate::graphql::loader::DbLoader;

impl Loader<String> for DbLoader {
    type Value = plan::Model;
    type Error = DomainError;

    async fn load(&self, codes: &[String]) -> Result<HashMap<String, plan::Model>, Self::Error> {
        let plans = plan::Entity::find()
            .filter(plan::Column::Code.is_in(codes.iter().cloned()))
            .all(&self.db)
            .await?;
        Ok(plans.into_iter().map(|p| (p.code.clone(), p)).collect())
    }
}
