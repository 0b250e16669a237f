//! The operator's pages over HTTP: other roles are refused with a friendly 403; an
//! organization and a user registered through the forms, errors beside the fields;
//! the audit-chain check; and the counts on the agency's and the operator's homes.

use crate::fixtures::NewTender;
use crate::helpers::{uscc, TestApp};
use crate::pages_agency::{html, page_session, post_form};

async fn operator_pages_refuse_other_roles(app: TestApp) {
    for username in ["agency", "enterprise1", "bank"] {
        let (client, _) = page_session(&app, username).await;
        for path in [
            "/operator/organizations",
            "/operator/organizations/new",
            "/operator/trust",
            "/operator/mail?status=failed",
            "/operator/audit",
        ] {
            let (status, page) = html(&client, &app, path).await;
            assert_eq!(status, 403, "{username} {path}");
            assert!(page.contains("无权访问"), "{username} {path}: {page}");
        }
    }
    // And an operator's form posted by someone else changes nothing.
    let (agency, csrf) = page_session(&app, "agency").await;
    let res = post_form(&agency, &app, "/operator/audit", &[("csrf_token", &csrf)]).await;
    assert_eq!(res.status(), 403);
}

async fn the_operator_registers_an_organization_and_a_user(app: TestApp) {
    let (operator, csrf) = page_session(&app, "operator").await;
    let (status, _) = html(&operator, &app, "/operator/organizations/new").await;
    assert_eq!(status, 200);
    let good = uscc("91371600MA3CQ0991");
    let mut bad = good.clone();
    // A wrong check character.
    bad.pop();
    bad.push(if good.ends_with('0') { '1' } else { '0' });
    let mut fields = vec![
        ("csrf_token", csrf.as_str()),
        ("kind", "enterprise"),
        ("name", "滨州页面测试有限公司"),
        ("uscc", bad.as_str()),
        ("email", "pages@example.com"),
    ];
    let res = post_form(&operator, &app, "/operator/organizations/new", &fields).await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.expect("body");
    assert!(
        page.contains("href=\"#uscc\"") && page.contains("id=\"uscc-error\""),
        "{page}"
    );
    assert!(page.contains("value=\"滨州页面测试有限公司\""), "{page}");

    fields.retain(|(k, _)| *k != "uscc");
    fields.push(("uscc", good.as_str()));
    let res = post_form(&operator, &app, "/operator/organizations/new", &fields).await;
    assert_eq!(res.status(), 303);
    let org_page = res.headers()["location"].to_str().expect("to").to_owned();
    let (_, page) = html(&operator, &app, &org_page).await;
    assert!(
        page.contains("机构已登记") && page.contains(&good),
        "{page}"
    );

    let (_, list) = html(&operator, &app, "/operator/organizations?q=页面测试").await;
    assert!(list.contains("滨州页面测试有限公司"), "{list}");
    assert!(list.contains("共 1 条"), "{list}");

    let users = format!("{org_page}/users");
    let mut user = vec![
        ("csrf_token", csrf.as_str()),
        ("username", "pagesuser"),
        ("display_name", "页面用户"),
        ("role", "enterprise"),
        ("password", "short"),
    ];
    let res = post_form(&operator, &app, &users, &user).await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.expect("body");
    assert!(page.contains("id=\"password-error\""), "{page}");
    assert!(
        !page.contains("value=\"short\""),
        "a password is never sent back"
    );
    user.retain(|(k, _)| *k != "password");
    user.push(("password", "a long enough password"));
    let res = post_form(&operator, &app, &users, &user).await;
    assert_eq!(res.status(), 303);
    let (_, page) = html(&operator, &app, &org_page).await;
    assert!(
        page.contains("pagesuser") && page.contains("有效"),
        "{page}"
    );

    // Deactivated: the user can no longer sign in.
    let id_start =
        page.find("/operator/users/").expect("a deactivate form") + "/operator/users/".len();
    let id: String = page[id_start..].chars().take_while(|c| *c != '/').collect();
    let org_id = org_page.rsplit('/').next().expect("id");
    let res = post_form(
        &operator,
        &app,
        &format!("/operator/users/{id}/deactivate"),
        &[("csrf_token", &csrf), ("organization_id", org_id)],
    )
    .await;
    assert_eq!(res.status(), 303);
    let (_, page) = html(&operator, &app, &org_page).await;
    assert!(page.contains("已停用"), "{page}");
    let res = app
        .api
        .post(app.url("/api/v1/auth/login"))
        .json(&serde_json::json!({ "username": "pagesuser", "password": "a long enough password" }))
        .send()
        .await
        .expect("sign in");
    assert_ne!(res.status(), 200, "a deactivated user cannot sign in");
}

async fn the_audit_check_shows_the_chain_intact_with_its_entries(app: TestApp) {
    let (operator, csrf) = page_session(&app, "operator").await;
    let (status, page) = html(&operator, &app, "/operator/audit").await;
    assert_eq!(status, 200);
    assert!(!page.contains("id=\"chain\""), "not run yet");
    let res = post_form(&operator, &app, "/operator/audit", &[("csrf_token", &csrf)]).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.expect("body");
    let entries = app.audit_entries().await;
    assert!(page.contains("审计日志完整"), "{page}");
    assert!(
        page.contains(&format!("已检查 {entries} 条记录")),
        "{entries} entries: {page}"
    );
}

async fn the_homes_count_the_agencys_and_the_operators_work(app: TestApp) {
    app.as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-HOME-1", 3))
        .await;
    let (agency, _) = page_session(&app, "agency").await;
    let (_, home) = html(&agency, &app, "/").await;
    let counts = figures(&home);
    assert_eq!(
        counts.first().map(|(f, l)| (*f, l.as_str())),
        Some((1, "本周开标的项目")),
        "{home}"
    );

    let operator_session = app.as_operator().await;
    let organizations = operator_session.organizations().await.len() as i64;
    let (operator, _) = page_session(&app, "operator").await;
    let (_, home) = html(&operator, &app, "/").await;
    let counts = figures(&home);
    assert!(
        counts.contains(&(organizations, "已登记的机构".to_owned())),
        "{organizations}: {counts:?}"
    );
    assert!(
        counts.contains(&(0, "发送失败的邮件".to_owned())),
        "{counts:?}"
    );
}

/// The (figure, label) pairs of a home's counts.
fn figures(home: &str) -> Vec<(i64, String)> {
    let pattern =
        regex::Regex::new(r#"<span class="figure">(\d+)</span>([^<]+)</a>"#).expect("regex");
    pattern
        .captures_iter(home)
        .map(|c| (c[1].parse().expect("number"), c[2].trim().to_owned()))
        .collect()
}

crate::on_both_backends!(
    operator_pages_refuse_other_roles,
    the_operator_registers_an_organization_and_a_user,
    the_audit_check_shows_the_chain_intact_with_its_entries,
    the_homes_count_the_agencys_and_the_operators_work,
);

/// The mail page needs a server of its own (an SMTP server that turns mail away).
mod mail_page {
    use super::{figures, html, page_session, post_form};
    use crate::fixtures::outbox::{plain_mail, smtp_delivery, MailStatus};
    use crate::fixtures::smtp::{Mode, SmtpServer};
    use crate::helpers::TestBackend;

    /// A mail the SMTP server keeps turning away ends failed: the operator's mail page
    /// lists it with a retry button, the home counts it, and the retry is taken (audited).
    async fn a_failed_mail_is_listed_and_retried_from_the_mail_page(backend: TestBackend) {
        let smtp = SmtpServer::start(Mode::Defer451).await;
        let app = backend.spawn_with(smtp_delivery(smtp.port, Some(2))).await;
        let ids = app
            .enqueue_mails(vec![plain_mail("pages@example.com", "页面重试测试")])
            .await;
        let id = &ids[0];
        app.wait_for_outbox(id, |r| r.status == MailStatus::Failed)
            .await;

        let (operator, csrf) = page_session(&app, "operator").await;
        let (_, home) = html(&operator, &app, "/").await;
        assert!(
            figures(&home).contains(&(1, "发送失败的邮件".to_owned())),
            "{home}"
        );
        let (status, page) = html(&operator, &app, "/operator/mail?status=failed").await;
        assert_eq!(status, 200);
        assert!(page.contains("页面重试测试"), "{page}");
        let retry = format!("/operator/mail/{id}/retry");
        assert!(page.contains(&format!("action=\"{retry}\"")), "{page}");
        let (_, sent) = html(&operator, &app, "/operator/mail?status=sent").await;
        assert!(!sent.contains("页面重试测试"), "the status filter: {sent}");

        let res = post_form(&operator, &app, &retry, &[("csrf_token", &csrf)]).await;
        assert_eq!(res.status(), 303);
        assert_eq!(res.headers()["location"], "/operator/mail?status=failed");
        assert_eq!(app.audited("retry_mail").await, std::slice::from_ref(id));
    }

    crate::on_both_backends!(configured: a_failed_mail_is_listed_and_retried_from_the_mail_page);
}
