//! The routing table, built once from the action catalog: method + path template → action.
//! The OpenAPI document is rendered here too, once, from the same catalog.

use std::sync::Arc;

use opsiq_core::catalog::{Catalog, Method};
use opsiq_core::openapi::{self, ACTION_PATHS, DOCUMENT_PATHS, HEALTH_PATH, READY_PATH};

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    /// A catalog action, with the parameters bound from the path.
    Action {
        action: String,
        path_params: Vec<(String, String)>,
    },
    /// The path exists, but not for this method.
    MethodNotAllowed {
        allowed: Vec<&'static str>,
    },
    /// The action endpoint, `POST /v1.php` (also `/api/v1.php`).
    ActionEndpoint,
    /// `GET /healthz`: the process is alive.
    Health,
    /// `GET /readyz`: the database, the migrations and the webhook worker are fine.
    Ready,
    /// `GET /api/v1/openapi.php` (also `/api/v1/openapi.json`): the OpenAPI document.
    OpenApi,
    NotFound,
}

/// The methods bound to one path template, each with its action, in registration order.
type Bound = Vec<(Method, String)>;

#[derive(Clone)]
pub struct Router {
    /// Path template → its methods. A literal segment beats a parameter:
    /// `/webhooks/replay` is not `/webhooks/{id}`.
    paths: matchit::Router<Bound>,
    openapi: Arc<str>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router").finish_non_exhaustive()
    }
}

impl Router {
    /// Builds the table from the catalog.
    ///
    /// # Panics
    /// When two templates cannot share the table (the same path with different parameter
    /// names): a fault of the catalog, found by the first test that builds a router.
    pub fn new(catalog: &Catalog) -> Self {
        let mut templates: Vec<(&str, Bound)> = Vec::new();
        for action in catalog.actions() {
            for route in &action.routes {
                let bound = (route.method, action.id.clone());
                match templates.iter_mut().find(|(path, _)| *path == route.path) {
                    Some((_, methods)) => methods.push(bound),
                    None => templates.push((&route.path, vec![bound])),
                }
            }
        }
        let mut paths = matchit::Router::new();
        for (path, methods) in templates {
            if let Err(e) = paths.insert(path, methods) {
                panic!("the catalog's route {path} cannot be routed: {e}");
            }
        }
        let openapi = openapi::document(catalog).to_string().into();
        Router { paths, openapi }
    }

    /// The OpenAPI document of the catalog, as JSON.
    pub fn openapi(&self) -> &str {
        &self.openapi
    }

    pub fn route(&self, method: &str, path: &str) -> Routed {
        if path == HEALTH_PATH || path == READY_PATH || DOCUMENT_PATHS.contains(&path) {
            return if method != "GET" && method != "HEAD" {
                Routed::MethodNotAllowed {
                    allowed: vec!["GET", "HEAD"],
                }
            } else if path == HEALTH_PATH {
                Routed::Health
            } else if path == READY_PATH {
                Routed::Ready
            } else {
                Routed::OpenApi
            };
        }
        if ACTION_PATHS.contains(&path) {
            return if method == "POST" {
                Routed::ActionEndpoint
            } else {
                Routed::MethodNotAllowed {
                    allowed: vec!["POST"],
                }
            };
        }
        let Ok(matched) = self.paths.at(path) else {
            return Routed::NotFound;
        };
        let method = Method::parse(method);
        match matched.value.iter().find(|(m, _)| Some(*m) == method) {
            Some((_, action)) => Routed::Action {
                action: action.clone(),
                path_params: matched
                    .params
                    .iter()
                    .map(|(name, value)| (name.to_string(), value.to_string()))
                    .collect(),
            },
            None => Routed::MethodNotAllowed {
                allowed: matched.value.iter().map(|(m, _)| m.as_str()).collect(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use opsiq_core::catalog::Action;

    use super::*;

    #[test]
    fn routes_come_from_the_catalog() {
        let router = Router::new(&Catalog::builtin());
        assert_eq!(
            router.route("GET", "/api/v1/tickets/42"),
            Routed::Action {
                action: "tickets.get".into(),
                path_params: vec![("id".into(), "42".into())]
            }
        );
        assert_eq!(
            router.route("POST", "/api/v1/contacts/7/tags"),
            Routed::Action {
                action: "contacts.tags.add".into(),
                path_params: vec![("id".into(), "7".into())]
            }
        );
        assert_eq!(
            router.route("DELETE", "/api/v1/tickets/42"),
            Routed::MethodNotAllowed {
                allowed: vec!["GET", "PATCH", "PUT"]
            }
        );
        assert_eq!(router.route("GET", "/api/v1/nope"), Routed::NotFound);
        // A parameter is one whole, non-empty segment.
        for path in [
            "/api/v1/tickets/",
            "/api/v1/tickets/42/x",
            "/api/v1/tickets//",
        ] {
            assert_eq!(router.route("GET", path), Routed::NotFound, "{path}");
        }
        assert_eq!(router.route("GET", "/healthz"), Routed::Health);
    }

    #[test]
    fn a_literal_segment_beats_a_path_parameter() {
        let mut catalog = Catalog::default();
        for (id, method, path) in [
            ("things.get", Method::Get, "/things/{id}"),
            ("things.update", Method::Patch, "/things/{id}"),
            ("things.report", Method::Get, "/things/report"),
        ] {
            let action = Action::new(id, None, "thing", id, |_, _, input: serde_json::Value| {
                Ok(input)
            });
            catalog.register(action.route(method, path)).unwrap();
        }
        let router = Router::new(&catalog);
        assert_eq!(
            router.route("GET", "/api/v1/things/report"),
            Routed::Action {
                action: "things.report".into(),
                path_params: vec![]
            }
        );
        assert_eq!(
            router.route("PATCH", "/api/v1/things/report"),
            Routed::MethodNotAllowed {
                allowed: vec!["GET"]
            }
        );
        assert_eq!(
            router.route("PATCH", "/api/v1/things/7"),
            Routed::Action {
                action: "things.update".into(),
                path_params: vec![("id".into(), "7".into())]
            }
        );
    }

    #[test]
    fn every_operation_of_the_openapi_document_is_routed() {
        let router = Router::new(&Catalog::builtin());
        let document: serde_json::Value = serde_json::from_str(router.openapi()).unwrap();
        for (path, item) in document["paths"].as_object().unwrap() {
            let concrete: Vec<&str> = path
                .split('/')
                .map(|seg| if seg.starts_with('{') { "1" } else { seg })
                .collect();
            let concrete = concrete.join("/");
            for method in item.as_object().unwrap().keys() {
                let routed = router.route(&method.to_ascii_uppercase(), &concrete);
                assert!(
                    !matches!(routed, Routed::NotFound | Routed::MethodNotAllowed { .. }),
                    "{method} {path} is documented but routed to {routed:?}"
                );
            }
        }
        assert_eq!(router.route("GET", "/api/v1/openapi.php"), Routed::OpenApi);
        assert_eq!(
            router.route("POST", "/api/v1/openapi.json"),
            Routed::MethodNotAllowed {
                allowed: vec!["GET", "HEAD"]
            }
        );
    }
}
