//! The served OpenAPI document, made to tell the whole truth: the errors every route can answer
//! (declared once here from what the middleware and extractors do, not repeated on every
//! handler), and the method table that turns a request for an existing path with another
//! method into 405 with `Allow`.

use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::schema::Ref;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Document, RefOr, Response};
use utoipa::{Modify, OpenApi};

/// Routes the rate limiter does not count (monitoring must not be throttled).
pub const UNLIMITED: &[&str] = &["/healthz", "/readyz", "/metrics"];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "voucherd",
        description = "Self-hosted voucher server: affiliate vouchers, digests, campaigns and code requests. \
            Every error is `application/problem+json` with a stable `code`."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "users", description = "Registration and user management"),
        (name = "auth", description = "Tokens and API keys"),
        (name = "networks", description = "Affiliate networks and their pulls"),
        (name = "vouchers", description = "The catalogue of collected vouchers"),
        (name = "notifications", description = "Admin alerts"),
        (name = "code-requests", description = "Codes asked of voucher-provider servers, and their callbacks"),
        (name = "push", description = "Web Push: the VAPID key and users' push subscriptions"),
        (name = "reports", description = "Campaign effectiveness and the server at a glance"),
        (name = "admin", description = "The dashboard page for managers (HTML, script, stylesheet)"),
        (name = "campaigns", description = "Campaigns, their codes and claims"),
        (name = "wallet", description = "The codes a customer holds"),
        (name = "digests", description = "Subscriptions, digests, unsubscribe links and the delivery outbox"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

const PROBLEM: &str = "application/problem+json";

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// The methods a path answers, in `Allow` order.
fn problem_response(description: &str) -> Response {
    let mut response = Response::new(description);
    response.content.insert(
        PROBLEM.to_owned(),
        RefOr::T(Content::new(Some(Ref::from_schema_name("Problem")))),
    );
    response
}

/// Names every operation after its method and path (`get_users_id_subscriptions`): the derive
/// names them after the handler function, and several modules have a `list`, so the document had
/// duplicate operation ids, which tools resolving links by id get wrong.
pub fn name_operations(doc: &mut Document) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let words: Vec<String> = path
            .trim_start_matches("/api/v1")
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| s.trim_matches(['{', '}']).replace('-', "_"))
            .collect();
        let suffix = words.join("_");
        let ops = [
            ("get", item.get.as_mut()),
            ("put", item.put.as_mut()),
            ("post", item.post.as_mut()),
            ("delete", item.delete.as_mut()),
            ("patch", item.patch.as_mut()),
        ];
        for (method, op) in ops {
            if let Some(op) = op {
                op.operation_id = Some(format!("{method}_{suffix}"));
            }
        }
    }
}

/// Declares the optional `Idempotency-Key` header on the creating POSTs that honour it.
pub fn declare_idempotency(doc: &mut Document) {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    for path in super::idempotency::ROUTES {
        let Some(op) = doc.paths.paths.get_mut(*path).and_then(|i| i.post.as_mut()) else {
            continue;
        };
        let header = ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(utoipa::openapi::Required::False)
            .description(Some(
                "Retry safely: the first answer under this key is replayed for 24 hours \
                 (`Idempotent-Replayed: true`); the same key with another request is 422.",
            ))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[!-~]{1,255}$")),
            ))
            .build();
        op.parameters
            .get_or_insert_with(Vec::new)
            .push(header.into());
    }
}

/// Operations whose body may be absent (the derive can only say so by making it nullable, which
/// would declare a `null` body valid).
const OPTIONAL_BODIES: &[&str] = &["/api/v1/admin/digests/run", "/api/v1/campaigns/{id}/claims"];

/// Marks the bodies of [`OPTIONAL_BODIES`] as not required.
pub fn optional_bodies(doc: &mut Document) {
    for path in OPTIONAL_BODIES {
        if let Some(item) = doc.paths.paths.get_mut(*path) {
            for op in operations_mut(item) {
                if let Some(RefOr::T(body)) = op.request_body.as_mut() {
                    body.required = Some(utoipa::openapi::Required::False);
                }
            }
        }
    }
}

/// Declares the errors each operation can answer, from what it takes:
/// - every error body is `application/problem+json` (handlers may declare `body = Problem`);
/// - parameters or a body: 400 (unreadable) and 422 (breaks a rule);
/// - a body: 413 (over `http.body_limit_bytes`) and 415 (not JSON);
/// - a bearer token: 401 (missing, unknown, expired) and 403 (role too low);
/// - a path parameter: 404 (no such resource, or not yours);
/// - everything but monitoring: 429 (rate limit) and 503 (the writer queue or a mailbox full).
pub fn declare_errors(doc: &mut Document) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let limited = !UNLIMITED.contains(&path.as_str());
        for op in operations_mut(item) {
            let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let has_path_param = op.parameters.as_ref().is_some_and(|ps| {
                ps.iter()
                    .any(|p| matches!(p, RefOr::T(p) if p.parameter_in == ParameterIn::Path))
            });
            let has_body = op.request_body.is_some();
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            let mut add = |status: u16, description: &str| {
                op.responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| RefOr::T(problem_response(description)));
            };
            if has_params || has_body {
                add(400, "The request cannot be read (bad JSON, query or path)");
                add(
                    422,
                    "The request breaks a rule (the detail names the field)",
                );
            }
            if has_body {
                add(413, "The body is larger than the limit");
                add(415, "The body is not application/json");
            }
            if secured {
                add(401, "No valid bearer token");
                add(403, "The token's role does not allow this");
            }
            if has_path_param {
                add(404, "No such resource (or not yours)");
            }
            if limited {
                add(429, "Rate limited; retry after `Retry-After` seconds");
                add(503, "Overloaded; retry after `Retry-After` seconds");
            }
            for (status, response) in op.responses.responses.iter_mut() {
                let is_error = status.starts_with('4') || status.starts_with('5');
                if let (true, RefOr::T(response)) = (is_error, response)
                    && let Some(content) = response.content.shift_remove("application/json")
                {
                    response.content.insert(PROBLEM.to_owned(), content);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn operation_ids_are_unique() {
        let doc = super::super::openapi();
        let mut seen = BTreeSet::new();
        for item in doc.paths.paths.values() {
            let mut item = item.clone();
            for op in operations_mut(&mut item) {
                let id = op.operation_id.clone().unwrap_or_default();
                assert!(seen.insert(id.clone()), "duplicate operation id {id}");
            }
        }
        assert!(seen.contains("get_users_id_subscriptions"), "{seen:?}");
    }

    #[test]
    fn every_error_is_declared_as_a_problem() {
        let doc = super::super::openapi();
        for (path, item) in &doc.paths.paths {
            let mut item = item.clone();
            for op in operations_mut(&mut item) {
                for (status, response) in &op.responses.responses {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    if status.starts_with('4') || status.starts_with('5') {
                        assert!(
                            // HTML pages (the unsubscribe page) answer their errors in HTML.
                            response.content.is_empty()
                                || response
                                    .content
                                    .keys()
                                    .all(|k| k == PROBLEM || k == "text/html"),
                            "{path} {status}: {:?}",
                            response.content.keys()
                        );
                    }
                }
                if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    assert!(op.responses.responses.contains_key("401"), "{path}");
                }
            }
        }
    }
}
