//! The images a run gets: attachments that are images, and the markdown
//! images people paste into the description and the comments the prompt
//! includes, fetched under the configured rules (`cyrus_linear::uploads`)
//! and sent as `data:` URIs. A refused or failed image is skipped (its link
//! stays in the prompt) and counted.

use crate::context::Ctx;
use cyrus_linear::LinearClient;
use cyrus_linear::client::IssueDetails;
use cyrus_linear::uploads::markdown_images;

/// At most this many downloads are tried per task beyond the cap of images
/// kept, so an issue full of broken links cannot hold a step for long
/// (URLs the rules refuse without the network cost no attempt).
const EXTRA_TRIES: usize = 3;

pub(super) async fn gather(ctx: &Ctx, linear: &LinearClient, issue: &IssueDetails) -> Vec<String> {
    let max = ctx.config.images.max_count;
    if max == 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut tries = 0;
    for url in candidates(ctx, issue) {
        if out.len() >= max || tries >= max + EXTRA_TRIES {
            break;
        }
        let fetched = match ctx.images.check(&url) {
            Ok(()) => {
                tries += 1;
                ctx.images.fetch(&url, linear).await
            }
            Err(refused) => Err(refused),
        };
        match fetched {
            Ok(image) => {
                metrics::counter!("cyrus_images_fetched_total").increment(1);
                out.push(image.data_uri());
            }
            Err(refused) => {
                metrics::counter!("cyrus_images_refused_total", "reason" => refused.label())
                    .increment(1);
                let host = url::Url::parse(&url)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_string))
                    .unwrap_or_default();
                tracing::info!(issue = %issue.identifier, %host, "image skipped: {refused}");
            }
        }
    }
    out
}

/// Image URLs in the order a reader meets them, deduplicated.
fn candidates(ctx: &Ctx, issue: &IssueDetails) -> Vec<String> {
    let mut urls: Vec<String> = Vec::new();
    let mut add = |url: String| {
        if !urls.contains(&url) {
            urls.push(url);
        }
    };
    for url in issue.attachments.nodes.iter().filter_map(|a| a.url.clone()) {
        if ctx.images.is_upload(&url) || has_image_extension(&url) {
            add(url);
        }
    }
    let texts = issue
        .description
        .iter()
        .chain(issue.comments.nodes.iter().filter_map(|c| c.body.as_ref()));
    for text in texts {
        for url in markdown_images(text) {
            add(url);
        }
    }
    urls
}

/// An attachment is a link to anything; only ones that look like images are
/// tried (their type is still checked from the bytes).
fn has_image_extension(url: &str) -> bool {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    [".png", ".jpg", ".jpeg", ".gif", ".webp"]
        .iter()
        .any(|ext| path.ends_with(ext))
}
