//! Linear's file storage as agents meet it: a pasted screenshot is a URL
//! under the upload origin with no file extension, and downloading it needs
//! the same `Authorization` header as the GraphQL API (401 without it).
//! Tests put files here through [`LinearControl::add_upload`].

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::control::LinearControl;
use super::server::Inner;

/// One stored file, or a redirect (to test that clients re-check the target).
#[derive(Clone, Debug)]
pub enum Upload {
    File {
        content_type: String,
        bytes: Vec<u8>,
    },
    Redirect {
        location: String,
    },
}

/// An organization's files, by `<uuid>/<uuid>` key.
#[derive(Default)]
pub struct Uploads {
    files: HashMap<String, Upload>,
    /// Downloads served (authorized ones only).
    pub served: u64,
}

impl LinearControl {
    /// Stores a file and returns its URL, as Linear's `fileUpload` would
    /// (no extension; the content type is only in the response header).
    pub fn add_upload(&self, content_type: &str, bytes: Vec<u8>) -> String {
        self.put_upload(Upload::File {
            content_type: content_type.to_string(),
            bytes,
        })
    }

    /// A URL under the upload origin that answers 302 to `location`.
    pub fn add_upload_redirect(&self, location: &str) -> String {
        self.put_upload(Upload::Redirect {
            location: location.to_string(),
        })
    }

    /// Authorized downloads served so far in this organization.
    pub fn uploads_served(&self) -> u64 {
        self.org.uploads.lock().expect("uploads lock").served
    }

    fn put_upload(&self, upload: Upload) -> String {
        let key = format!("{}/{}", uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let org = self.org.id();
        self.org
            .uploads
            .lock()
            .expect("uploads lock")
            .files
            .insert(key.clone(), upload);
        format!("{}/uploads/{org}/{key}", self.inner.base_url)
    }
}

pub fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .route("/uploads/{org}/{a}/{b}", get(download))
        .with_state(inner)
}

async fn download(
    State(inner): State<Arc<Inner>>,
    Path((org_id, a, b)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(org) = inner.authenticate(&headers) else {
        return (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
    };
    // A token of one workspace does not open another's files.
    if org.id() != org_id {
        return (StatusCode::NOT_FOUND, "Not found").into_response();
    }
    let mut uploads = org.uploads.lock().expect("uploads lock");
    let Some(upload) = uploads.files.get(&format!("{a}/{b}")).cloned() else {
        return (StatusCode::NOT_FOUND, "Not found").into_response();
    };
    uploads.served += 1;
    match upload {
        Upload::File {
            content_type,
            bytes,
        } => {
            let mut resp = (StatusCode::OK, bytes).into_response();
            if let Ok(v) = HeaderValue::from_str(&content_type) {
                resp.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            resp
        }
        Upload::Redirect { location } => {
            let mut resp = StatusCode::FOUND.into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            resp
        }
    }
}
