//! The routing table, built once from the action catalog: method + path template → action.
//! The OpenAPI document is rendered here too, once, from the same catalog.

use std::sync::Arc;

use opsiq_core::catalog::{Catalog, Method, Route};
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

#[derive(Debug, Clone)]
pub struct Router {
    routes: Vec<(Route, String)>,
    openapi: Arc<str>,
}

impl Router {
    pub fn new(catalog: &Catalog) -> Self {
        let routes = catalog
            .actions()
            .iter()
            .flat_map(|a| a.routes.iter().map(move |r| (r.clone(), a.id.clone())))
            .collect();
        let openapi = openapi::document(catalog).to_string().into();
        Router { routes, openapi }
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
        let matching: Vec<_> = self
            .routes
            .iter()
            .filter_map(|(route, action)| Some((route, action, route.matches(path)?)))
            .collect();
        // A literal segment beats a parameter: `/webhooks/replay` is not `/webhooks/{id}`.
        let most_specific = matching.iter().map(|(r, ..)| literal_segments(r)).max();
        let mut allowed = Vec::new();
        for (route, action, path_params) in matching {
            if Some(literal_segments(route)) != most_specific {
                continue;
            }
            if Method::parse(method) == Some(route.method) {
                return Routed::Action {
                    action: action.clone(),
                    path_params,
                };
            }
            allowed.push(route.method.as_str());
        }
        if allowed.is_empty() {
            Routed::NotFound
        } else {
            Routed::MethodNotAllowed { allowed }
        }
    }
}

fn literal_segments(route: &Route) -> usize {
    route.path.split('/').count() - route.path_params().count()
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
