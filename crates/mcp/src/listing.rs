//! `tools/list` across several upstreams: every page of each, namespaced, in one answer.
//! With one upstream the agent pages through the upstream's own cursors (the gateway passes
//! them on), so only here does the gateway follow cursors itself, and an upstream that
//! answers with a cursor forever must not make it loop and grow.

use std::{collections::HashSet, future::Future};

use rmcp::{
    RoleServer,
    model::{ClientRequest, ErrorData, ListToolsResult, PaginatedRequestParams, ServerResult},
    service::RequestContext,
};

use crate::{config::NAMESPACE_SEPARATOR, gateway::Gateway};

/// The most pages the gateway reads from one upstream for one listing.
pub(crate) const MAX_PAGES: usize = 64;

/// Reads pages through `fetch` (given the cursor, it answers a page's items and the next
/// cursor) until a page has no cursor, a cursor comes back that was seen before, or
/// [`MAX_PAGES`] pages were read. What was read is kept: a misbehaving upstream lists what
/// it listed so far, and the other upstreams are listed in full.
pub(crate) async fn every_page<T, F, Fut>(name: &str, mut fetch: F) -> Result<Vec<T>, ErrorData>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>), ErrorData>>,
{
    let mut items = Vec::new();
    let mut cursor = None;
    let mut seen: HashSet<String> = HashSet::new();
    for _ in 0..MAX_PAGES {
        let (page, next) = fetch(cursor.take()).await?;
        items.extend(page);
        match next {
            None => return Ok(items),
            Some(next) if !seen.insert(next.clone()) => {
                tracing::warn!(upstream = %name, cursor = %next, "an upstream repeated a cursor: its listing ends here");
                return Ok(items);
            }
            Some(next) => cursor = Some(next),
        }
    }
    tracing::warn!(upstream = %name, "an upstream listed more than {MAX_PAGES} pages: its listing ends here");
    Ok(items)
}

impl Gateway {
    pub(crate) async fn list_tools(
        &self,
        request: ClientRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<ServerResult, ErrorData> {
        let upstreams = self.session(&context).await?;
        if !self.namespaced() {
            return self.pass(&upstreams[0], request, context).await;
        }
        let mut tools = Vec::new();
        for upstream in upstreams {
            let listed = every_page(&upstream.name, |cursor| async move {
                let mut params = PaginatedRequestParams::default();
                params.cursor = cursor;
                let page = upstream
                    .peer()
                    .list_tools(Some(params))
                    .await
                    .map_err(crate::upstream::service_error)?;
                Ok((page.tools, page.next_cursor))
            })
            .await?;
            for mut tool in listed {
                tool.name = format!("{}{NAMESPACE_SEPARATOR}{}", upstream.name, tool.name).into();
                tools.push(tool);
            }
        }
        Ok(ServerResult::ListToolsResult(
            ListToolsResult::with_all_items(tools),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Counts the pages asked for; past 1000 the loop is taken for endless.
    async fn pages_read(next: impl Fn(usize) -> Option<String>) -> (usize, usize) {
        let asked = AtomicUsize::new(0);
        let items = every_page("endless", |_cursor| {
            let n = asked.fetch_add(1, Ordering::Relaxed);
            assert!(n < 1000, "the gateway kept asking for pages");
            let next = next(n);
            async move { Ok((vec![n], next)) }
        })
        .await
        .expect("pages");
        (asked.load(Ordering::Relaxed), items.len())
    }

    #[tokio::test]
    async fn an_upstream_that_repeats_its_cursor_is_read_once() {
        let (asked, items) = pages_read(|_| Some("again".into())).await;
        assert_eq!(
            (asked, items),
            (2, 2),
            "the page after the first `again` repeats it"
        );
    }

    #[tokio::test]
    async fn an_upstream_with_endless_new_cursors_is_read_up_to_the_cap() {
        let (asked, items) = pages_read(|n| Some(format!("page-{n}"))).await;
        assert_eq!((asked, items), (MAX_PAGES, MAX_PAGES));
    }

    #[tokio::test]
    async fn a_well_behaved_upstream_is_read_to_its_last_page() {
        let (asked, items) = pages_read(|n| (n < 4).then(|| format!("page-{n}"))).await;
        assert_eq!((asked, items), (5, 5));
    }
}
