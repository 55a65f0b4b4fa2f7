//! Message templates: built in, each replaceable by a file of the same name in
//! `[delivery.email] templates_dir`. Autoescaping follows the name: `.html` is escaped, `.txt`
//! is not.

use std::path::Path;

use minijinja::{Environment, Value};
use serde::Serialize;

/// The template names and their built-in sources.
const BUILT_IN: &[(&str, &str)] = &[
    ("digest.html", include_str!("templates/digest.html")),
    ("digest.txt", include_str!("templates/digest.txt")),
    (
        "digest_subject.txt",
        include_str!("templates/digest_subject.txt"),
    ),
    (
        "unsubscribe.html",
        include_str!("templates/unsubscribe.html"),
    ),
    ("code.html", include_str!("templates/code.html")),
    ("code.txt", include_str!("templates/code.txt")),
    ("code_sms.txt", include_str!("templates/code_sms.txt")),
    (
        "requested_sms.txt",
        include_str!("templates/requested_sms.txt"),
    ),
    (
        "code_subject.txt",
        include_str!("templates/code_subject.txt"),
    ),
    (
        "confirm_email.html",
        include_str!("templates/confirm_email.html"),
    ),
    (
        "confirm_email.txt",
        include_str!("templates/confirm_email.txt"),
    ),
    (
        "confirm_email_subject.txt",
        include_str!("templates/confirm_email_subject.txt"),
    ),
    (
        "confirm_email_page.html",
        include_str!("templates/confirm_email_page.html"),
    ),
    (
        "already_registered.html",
        include_str!("templates/already_registered.html"),
    ),
    (
        "already_registered.txt",
        include_str!("templates/already_registered.txt"),
    ),
    (
        "already_registered_subject.txt",
        include_str!("templates/already_registered_subject.txt"),
    ),
    (
        "phone_code_sms.txt",
        include_str!("templates/phone_code_sms.txt"),
    ),
    ("alert.html", include_str!("templates/alert.html")),
    ("alert.txt", include_str!("templates/alert.txt")),
    (
        "alert_subject.txt",
        include_str!("templates/alert_subject.txt"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template {name}: {source}")]
    Syntax {
        name: String,
        source: minijinja::Error,
    },
    #[error("reading template {0}: {1}")]
    Io(String, std::io::Error),
    #[error("rendering {0}: {1}")]
    Render(&'static str, minijinja::Error),
}

pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// The built-in templates, with those found in `dir` (when given) in their place.
    pub fn load(dir: Option<&Path>) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        for (name, source) in BUILT_IN {
            let source = match dir.map(|d| d.join(name)).filter(|p| p.is_file()) {
                Some(path) => std::fs::read_to_string(&path)
                    .map_err(|e| TemplateError::Io(path.display().to_string(), e))?,
                None => (*source).to_owned(),
            };
            env.add_template_owned(*name, source)
                .map_err(|source| TemplateError::Syntax {
                    name: (*name).to_owned(),
                    source,
                })?;
        }
        Ok(Self { env })
    }

    pub fn render<C: Serialize>(
        &self,
        name: &'static str,
        ctx: &C,
    ) -> Result<String, TemplateError> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(Value::from(minijinja::value::Serde(ctx))))
            .map_err(|e| TemplateError::Render(name, e))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_file_is_built_in() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/delivery/templates");
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                super::BUILT_IN.iter().any(|(n, _)| *n == name),
                "{name} is not in BUILT_IN"
            );
        }
    }
}
