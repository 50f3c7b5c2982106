//! The routing table, built once from the action catalog: method + path template → action.

use opsiq_core::catalog::{Catalog, Method, Route};

/// The paths of the action endpoint.
pub const ACTION_ENDPOINTS: [&str; 2] = ["/v1.php", "/api/v1.php"];

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
    /// `GET /healthz`.
    Health,
    NotFound,
}

#[derive(Debug, Clone)]
pub struct Router {
    routes: Vec<(Route, String)>,
}

impl Router {
    pub fn new(catalog: &Catalog) -> Self {
        let routes = catalog
            .actions()
            .iter()
            .flat_map(|a| a.routes.iter().map(move |r| (r.clone(), a.id.clone())))
            .collect();
        Router { routes }
    }

    pub fn route(&self, method: &str, path: &str) -> Routed {
        if path == "/healthz" {
            return if method == "GET" || method == "HEAD" {
                Routed::Health
            } else {
                Routed::MethodNotAllowed {
                    allowed: vec!["GET", "HEAD"],
                }
            };
        }
        if ACTION_ENDPOINTS.contains(&path) {
            return if method == "POST" {
                Routed::ActionEndpoint
            } else {
                Routed::MethodNotAllowed {
                    allowed: vec!["POST"],
                }
            };
        }
        let mut allowed = Vec::new();
        for (route, action) in &self.routes {
            if let Some(path_params) = route.matches(path) {
                if Method::parse(method) == Some(route.method) {
                    return Routed::Action {
                        action: action.clone(),
                        path_params,
                    };
                }
                allowed.push(route.method.as_str());
            }
        }
        if allowed.is_empty() {
            Routed::NotFound
        } else {
            Routed::MethodNotAllowed { allowed }
        }
    }
}

#[cfg(test)]
mod tests {
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
}
