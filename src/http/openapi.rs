//! The served OpenAPI document, made to tell the whole truth: the errors every route can answer
//! (declared once here from what the middleware and extractors do, not repeated on every
//! handler), and the method table that turns a request for an existing path with another
//! method into 405 with `Allow`.

use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, Ref, Schema, SchemaType, Type};
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
        (name = "pages", description = "The browser pages: the console for managers at /admin, the customer page at /me, and what they share"),
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

/// One branch of a body that is a `oneOf`: the body's object with `fixed` properties limited to
/// these values (required when `required`), these properties `required` (and then not `null`),
/// and these `removed`: then only what the server reads as absent (`null`, or `false` for a
/// flag), or, with `additionalProperties: false`, not allowed at all.
struct Variant {
    title: &'static str,
    fixed: &'static [(&'static str, &'static [&'static str], bool)],
    required: &'static [&'static str],
    removed: &'static [&'static str],
}

/// A campaign by `kind` and `code_mode`: what each kind carries (a discount for `discount`, a
/// balance and unique codes for `gift_card`) and what only unique codes have (validity after a
/// claim).
const CAMPAIGN_VARIANTS: &[Variant] = &[
    Variant {
        title: "discount, unique codes",
        fixed: &[
            ("kind", &["discount"], true),
            ("code_mode", &["unique"], false),
        ],
        required: &["discount"],
        removed: &["gift_balance_cents"],
    },
    Variant {
        title: "discount, a shared code",
        fixed: &[
            ("kind", &["discount"], true),
            ("code_mode", &["shared"], true),
        ],
        required: &["discount"],
        removed: &[
            "gift_balance_cents",
            "validity_days_after_claim",
            "expire_at_local_end_of_day",
        ],
    },
    Variant {
        title: "flash sale, unique codes",
        fixed: &[
            ("kind", &["flash_sale"], true),
            ("code_mode", &["unique"], false),
        ],
        required: &[],
        removed: &["gift_balance_cents"],
    },
    Variant {
        title: "flash sale, a shared code",
        fixed: &[
            ("kind", &["flash_sale"], true),
            ("code_mode", &["shared"], true),
        ],
        required: &[],
        removed: &[
            "gift_balance_cents",
            "validity_days_after_claim",
            "expire_at_local_end_of_day",
        ],
    },
    Variant {
        title: "gift card (unique codes, each with a balance)",
        fixed: &[
            ("kind", &["gift_card"], true),
            ("code_mode", &["unique"], false),
        ],
        required: &["gift_balance_cents"],
        removed: &["discount"],
    },
];

/// A discount: a share (perhaps capped) or a fixed amount in a currency.
const DISCOUNT_VARIANTS: &[Variant] = &[
    Variant {
        title: "a percentage",
        fixed: &[],
        required: &["percent"],
        removed: &["amount_cents", "currency"],
    },
    Variant {
        title: "a fixed amount",
        fixed: &[],
        required: &["amount_cents", "currency"],
        removed: &["percent", "max_cents"],
    },
];

/// Who a validation is for: a user, or a shop's reference, not both.
const VALIDATION_VARIANTS: &[Variant] = &[
    Variant {
        title: "for a user (or the caller)",
        fixed: &[],
        required: &[],
        removed: &["customer_ref"],
    },
    Variant {
        title: "for a shop's reference",
        fixed: &[],
        required: &["customer_ref"],
        removed: &["customer"],
    },
];

/// A redemption: for a user or a reference, against an order or (the old body) an amount.
const REDEMPTION_VARIANTS: &[Variant] = &[
    Variant {
        title: "an order, for a user",
        fixed: &[],
        required: &["order"],
        removed: &["customer_ref", "order_amount_cents"],
    },
    Variant {
        title: "an order, for a shop's reference",
        fixed: &[],
        required: &["order", "customer_ref"],
        removed: &["customer", "order_amount_cents"],
    },
    Variant {
        title: "an amount only, for a user (the old body)",
        fixed: &[],
        required: &[],
        removed: &["customer_ref", "order"],
    },
    Variant {
        title: "an amount only, for a shop's reference (the old body)",
        fixed: &[],
        required: &["customer_ref"],
        removed: &["customer", "order"],
    },
];

/// `schema` without `null` among what it admits (a required property must be given).
fn not_null(schema: &RefOr<Schema>) -> RefOr<Schema> {
    match schema {
        RefOr::T(Schema::Object(o)) => {
            let mut o = o.clone();
            if let SchemaType::Array(types) = &o.schema_type {
                let kept: Vec<Type> = types
                    .iter()
                    .filter(|t| **t != Type::Null)
                    .cloned()
                    .collect();
                o.schema_type = match kept.as_slice() {
                    [one] => SchemaType::Type(one.clone()),
                    _ => SchemaType::Array(kept),
                };
            }
            RefOr::T(Schema::Object(o))
        }
        RefOr::T(Schema::OneOf(one)) => {
            let kept: Vec<RefOr<Schema>> = one
                .items
                .iter()
                .filter(|i| !matches!(i, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null)))
                .cloned()
                .collect();
            match kept.as_slice() {
                [only] => only.clone(),
                _ => {
                    let mut one = one.clone();
                    one.items = kept;
                    RefOr::T(Schema::OneOf(one))
                }
            }
        }
        other => other.clone(),
    }
}

/// What the server reads as an absent `property`: `null` when it admits null, `false` for a
/// flag; `None` when it has no such value.
fn absent(property: &RefOr<Schema>) -> Option<RefOr<Schema>> {
    let admits_null = match property {
        RefOr::T(Schema::Object(o)) => match &o.schema_type {
            SchemaType::Array(types) => types.contains(&Type::Null),
            SchemaType::Type(Type::Boolean) => {
                return Some(RefOr::T(Schema::Object(
                    ObjectBuilder::new()
                        .schema_type(Type::Boolean)
                        .enum_values(Some([false]))
                        .build(),
                )));
            }
            _ => false,
        },
        RefOr::T(Schema::OneOf(one)) => one.items.iter().any(
            |i| matches!(i, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null)),
        ),
        _ => false,
    };
    admits_null.then(|| {
        RefOr::T(Schema::Object(
            ObjectBuilder::new().schema_type(Type::Null).build(),
        ))
    })
}

/// Replaces the object schema `name` with a `oneOf` of its `variants` (each a copy of the object
/// narrowed as the variant says), so the document states rules across its fields.
fn split_into_variants(doc: &mut Document, name: &str, variants: &[Variant]) {
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    let Some(RefOr::T(Schema::Object(object))) = components.schemas.get(name).cloned() else {
        return;
    };
    let mut one_of = utoipa::openapi::schema::OneOf::new();
    for v in variants {
        let mut o = object.clone();
        o.title = Some(v.title.to_owned());
        for (field, values, required) in v.fixed {
            let described = o.properties.get(*field).and_then(|p| match p {
                RefOr::T(Schema::Object(p)) => p.description.clone(),
                _ => None,
            });
            let fixed = ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(values.iter().copied()))
                .description(described)
                .build();
            o.properties
                .insert((*field).to_owned(), RefOr::T(Schema::Object(fixed)));
            if *required && !o.required.iter().any(|r| r == field) {
                o.required.push((*field).to_owned());
            }
        }
        for field in v.required {
            if let Some(p) = o.properties.get(*field).map(not_null) {
                o.properties.insert((*field).to_owned(), p);
            }
            if !o.required.iter().any(|r| r == field) {
                o.required.push((*field).to_owned());
            }
        }
        for field in v.removed {
            o.required.retain(|r| r != field);
            if let Some(absent) = o.properties.remove(*field).as_ref().and_then(absent) {
                o.properties.insert((*field).to_owned(), absent);
            }
        }
        one_of.items.push(RefOr::T(Schema::Object(o)));
    }
    one_of.description = object.description.clone();
    components
        .schemas
        .insert(name.to_owned(), RefOr::T(Schema::OneOf(one_of)));
}

/// States the cross-field rules of request bodies that JSON Schema can say, as `oneOf`s: a
/// campaign by kind and code mode, a discount by its form, who a validation or a redemption is
/// for and what it is against.
pub fn body_variants(doc: &mut Document) {
    split_into_variants(doc, "NewCampaign", CAMPAIGN_VARIANTS);
    split_into_variants(doc, "DiscountBody", DISCOUNT_VARIANTS);
    split_into_variants(doc, "NewValidation", VALIDATION_VARIANTS);
    split_into_variants(doc, "NewRedemption", REDEMPTION_VARIANTS);
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
                add(
                    408,
                    "The body did not arrive within `[http] body_timeout_s` seconds",
                );
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
