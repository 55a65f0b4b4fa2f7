//! Which methods each documented path answers, read from the OpenAPI document: a request for a
//! known path with another method gets 405 and `Allow` instead of 404.

use std::collections::BTreeSet;

use actix_web::http::Method;
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::path::PathItem;

/// Path templates with the methods each answers: a request for a known path with another method
/// gets 405 and `Allow` instead of 404.
#[derive(Debug, Default)]
pub struct MethodTable {
    routes: Vec<(Vec<Segment>, Vec<Method>)>,
}

#[derive(Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param,
}

impl MethodTable {
    pub fn from_document(doc: &Document) -> Self {
        let routes = doc
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let segments = path
                    .split('/')
                    .map(|s| {
                        if s.starts_with('{') && s.ends_with('}') {
                            Segment::Param
                        } else {
                            Segment::Literal(s.to_owned())
                        }
                    })
                    .collect();
                (segments, methods(item))
            })
            .collect();
        Self { routes }
    }

    /// The methods `path` answers (none for an unknown path). A path that is a template without
    /// parameters (`/users/me`) answers only its own methods, though `/users/{id}` matches it too.
    pub fn allowed(&self, path: &str) -> Vec<Method> {
        if let Some(methods) = self.literal(path) {
            return methods.to_vec();
        }
        let parts: Vec<&str> = path.split('/').collect();
        let mut found = BTreeSet::new();
        let mut ordered = Vec::new();
        for (segments, methods) in &self.routes {
            let matches = segments.len() == parts.len()
                && segments.iter().zip(&parts).all(|(s, p)| match s {
                    Segment::Literal(l) => l == p,
                    Segment::Param => !p.is_empty(),
                });
            if matches {
                for m in methods {
                    if found.insert(m.as_str().to_owned()) {
                        ordered.push(m.clone());
                    }
                }
            }
        }
        ordered
    }

    /// The methods of the template that is exactly `path` (no parameters), if there is one.
    pub fn literal(&self, path: &str) -> Option<&[Method]> {
        let parts: Vec<&str> = path.split('/').collect();
        self.routes.iter().find_map(|(segments, methods)| {
            let exact = segments.len() == parts.len()
                && segments
                    .iter()
                    .zip(&parts)
                    .all(|(s, p)| matches!(s, Segment::Literal(l) if l == p));
            exact.then_some(methods.as_slice())
        })
    }
}

/// The methods a documented path item has.
pub(crate) fn methods(item: &PathItem) -> Vec<Method> {
    [
        (item.get.is_some(), Method::GET),
        (item.put.is_some(), Method::PUT),
        (item.post.is_some(), Method::POST),
        (item.delete.is_some(), Method::DELETE),
        (item.patch.is_some(), Method::PATCH),
    ]
    .into_iter()
    .filter_map(|(present, m)| present.then_some(m))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_paths_list_their_methods_and_unknown_ones_none() {
        let doc = crate::http::openapi();
        let table = MethodTable::from_document(&doc);
        assert_eq!(table.allowed("/healthz"), vec![Method::GET]);
        let user = table.allowed("/api/v1/users/0190b3f2-0000-7000-8000-000000000000");
        assert!(user.contains(&Method::GET) && user.contains(&Method::PATCH));
        assert!(user.contains(&Method::DELETE) && !user.contains(&Method::POST));
        assert!(table.allowed("/api/v1/nothing").is_empty());
        assert_eq!(table.allowed("/api/v1/users/me"), vec![Method::GET]);
        assert!(table.allowed("/api/v1/users//subscriptions").is_empty());
    }
}
