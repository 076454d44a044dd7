//! Plans as data, and the admin operations that change them.

use crate::common;

use common::{error_code, TestApp};
use serde_json::json;

const PLAN_FIELDS: &str =
    "code name monthlyQuota priceCents overagePriceMicros rateLimitPerMinute blocksOverQuota";

#[tokio::test]
async fn plans_lists_the_three_default_plans_from_the_database() {
    let app = TestApp::new().await;
    let data = app
        .graphql_ok(None, &format!("{{ plans {{ {PLAN_FIELDS} }} }}"), json!({}))
        .await;
    assert_eq!(
        data["plans"],
        json!([
            { "code": "FREE", "name": "Free", "monthlyQuota": 1000, "priceCents": 0, "overagePriceMicros": 0,
              "rateLimitPerMinute": 100, "blocksOverQuota": true },
            { "code": "PRO", "name": "Pro", "monthlyQuota": 100000, "priceCents": 2900, "overagePriceMicros": 1000,
              "rateLimitPerMinute": 100, "blocksOverQuota": false },
            { "code": "ENTERPRISE", "name": "Enterprise", "monthlyQuota": null, "priceCents": 29900,
              "overagePriceMicros": 0, "rateLimitPerMinute": 100, "blocksOverQuota": false },
        ])
    );
}

#[tokio::test]
async fn a_member_is_forbidden_every_admin_operation() {
    let app = TestApp::new().await;
    let common::SignedUp {
        token: member,
        account_id,
        ..
    } = app.sign_up("member@example.com").await;
    let operations = [
        (
            "mutation($a: ID!) { adminSetPlan(accountId: $a, plan: PRO) { id } }",
            json!({ "a": account_id }),
        ),
        (
            "mutation { adminUpdatePlan(code: FREE, input: { monthlyQuota: 5 }) { code } }",
            json!({}),
        ),
    ];
    for (operation, variables) in operations {
        let body = app.graphql(Some(&member), operation, variables).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{operation}: {body}");
        let anonymous = app
            .graphql(None, operation, json!({ "a": account_id }))
            .await;
        assert_eq!(error_code(&anonymous), "UNAUTHENTICATED", "{operation}");
    }
    // Nothing changed.
    let me = app
        .graphql_ok(
            Some(&member),
            "{ me { account { plan { code monthlyQuota } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        me["me"]["account"]["plan"],
        json!({ "code": "FREE", "monthlyQuota": 1000 })
    );
}

#[tokio::test]
async fn admin_role_is_read_from_the_database_not_the_token() {
    let app = TestApp::new().await;
    let admin = app.admin_token().await;
    let update = "mutation { adminUpdatePlan(code: PRO, input: { name: \"Pro\" }) { code } }";
    assert!(app
        .graphql(Some(&admin), update, json!({}))
        .await
        .get("errors")
        .is_none());

    // Demote the admin behind the token's back: the same token is now refused.
    use sea_orm::sea_query::Expr;
    use sea_orm::EntityTrait;
    tally::entity::user::Entity::update_many()
        .col_expr(tally::entity::user::Column::Role, Expr::value("MEMBER"))
        .exec(&app.state.db)
        .await
        .unwrap();
    assert_eq!(
        error_code(&app.graphql(Some(&admin), update, json!({})).await),
        "FORBIDDEN"
    );
}

#[tokio::test]
async fn admin_set_plan_moves_an_account_and_records_when() {
    let app = TestApp::new().await;
    let common::SignedUp {
        token: member,
        account_id,
        ..
    } = app.sign_up("upgrade@example.com").await;
    let admin = app.admin_token().await;
    let data = app
        .graphql_ok(
            Some(&admin),
            "mutation($a: ID!) { adminSetPlan(accountId: $a, plan: ENTERPRISE) { id plan { code monthlyQuota } } }",
            json!({ "a": account_id }),
        )
        .await;
    assert_eq!(
        data["adminSetPlan"]["plan"],
        json!({ "code": "ENTERPRISE", "monthlyQuota": null })
    );
    assert_eq!(app.plan_code(&member).await, "ENTERPRISE");

    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    use tally::entity::account_plan_change as change;
    let history: Vec<_> = change::Entity::find()
        .filter(change::Column::AccountId.eq(account_id.as_str()))
        .order_by_asc(change::Column::Id)
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.plan_code)
        .collect();
    assert_eq!(history, vec!["FREE", "ENTERPRISE"]);

    let missing = app
        .graphql_error_code(
            Some(&admin),
            "mutation { adminSetPlan(accountId: \"nope\", plan: PRO) { id } }",
        )
        .await;
    assert_eq!(missing, "NOT_FOUND");
}

#[tokio::test]
async fn admin_update_plan_changes_only_the_given_fields_and_is_seen_by_the_key_lookup() {
    let app = TestApp::new().await;
    let member = app.sign_up("limits@example.com").await.token;
    let (key, _) = app.create_key(&member, false).await;
    let before = app.resolve_key(&key).await;
    assert_eq!(before.plan.rate_limit_per_minute, 100);

    let admin = app.admin_token().await;
    let data = app
        .graphql_ok(
            Some(&admin),
            &format!("mutation {{ adminUpdatePlan(code: FREE, input: {{ monthlyQuota: 50, rateLimitPerMinute: 7 }}) {{ {PLAN_FIELDS} }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(
        data["adminUpdatePlan"],
        json!({ "code": "FREE", "name": "Free", "monthlyQuota": 50, "priceCents": 0, "overagePriceMicros": 0,
                "rateLimitPerMinute": 7, "blocksOverQuota": true })
    );
    // The next lookup sees the new limits at once, cached entry or not.
    let after = app.resolve_key(&key).await;
    assert_eq!(
        (after.plan.rate_limit_per_minute, after.plan.monthly_quota),
        (7, Some(50))
    );

    let unlimited = app
        .graphql_ok(
            Some(&admin),
            "mutation { adminUpdatePlan(code: PRO, input: { unlimited: true }) { monthlyQuota } }",
            json!({}),
        )
        .await;
    assert_eq!(unlimited["adminUpdatePlan"]["monthlyQuota"], json!(null));
}

#[tokio::test]
async fn admin_update_plan_refuses_bad_values_and_changes_nothing() {
    let app = TestApp::new().await;
    let admin = app.admin_token().await;
    for input in [
        "{ monthlyQuota: -1 }",
        "{ priceCents: -5 }",
        "{ overagePriceMicros: -1 }",
        "{ rateLimitPerMinute: 0 }",
        "{ name: \"\" }",
        "{ monthlyQuota: 10, unlimited: true }",
    ] {
        let body = app
            .graphql(
                Some(&admin),
                &format!("mutation {{ adminUpdatePlan(code: PRO, input: {input}) {{ code }} }}"),
                json!({}),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{input}");
    }
    let limited_again = app
        .graphql_error_code(
            Some(&admin),
            "mutation { adminUpdatePlan(code: ENTERPRISE, input: { unlimited: false }) { code } }",
        )
        .await;
    assert_eq!(limited_again, "BAD_USER_INPUT");
    let data = app
        .graphql_ok(
            None,
            "{ plans { code monthlyQuota priceCents rateLimitPerMinute name } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["plans"][1],
        json!({ "code": "PRO", "monthlyQuota": 100000, "priceCents": 2900, "rateLimitPerMinute": 100, "name": "Pro" })
    );
}
