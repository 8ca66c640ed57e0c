//! The gateway over Streamable HTTP. rmcp's HTTP server takes a `ServerHandler` (it checks
//! the 2026 lifecycle's inline metadata and the tasks and skills capabilities before
//! dispatching), so this wrapper rebuilds each typed call into the `ClientRequest` the
//! gateway's `Service` dispatches, and unpacks its answer: one code path for both transports.

// Logging and resources/subscribe are deprecated by the 2026 protocol, yet agents on older
// versions use them: the gateway passes them through like everything else.
#![allow(deprecated)]

use std::sync::Arc;

use rmcp::{
    RoleServer, ServerHandler, Service,
    model::{
        CallToolRequest, CallToolRequestParams, CallToolResponse, CancelTaskParams,
        CancelTaskRequest, ClientNotification, ClientRequest, CompleteRequest,
        CompleteRequestParams, CompleteResult, CustomNotification, CustomRequest, CustomResult,
        ErrorData, GetPromptRequest, GetPromptRequestParams, GetPromptResponse, GetTaskParams,
        GetTaskRequest, GetTaskResult, InitializeRequest, InitializeRequestParams,
        InitializeResult, ListPromptsRequest, ListPromptsResult, ListResourceTemplatesRequest,
        ListResourceTemplatesResult, ListResourcesRequest, ListResourcesResult, ListToolsRequest,
        ListToolsResult, PaginatedRequestParams, ProgressNotification, ProgressNotificationParam,
        ReadResourceRequest, ReadResourceRequestParams, ReadResourceResponse, RequestOptionalParam,
        RootsListChangedNotification, ServerConfig, ServerResult, SetLevelRequest,
        SetLevelRequestParams, SubscribeRequest, SubscribeRequestParams, TASKS_EXTENSION_ID,
        UnsubscribeRequest, UnsubscribeRequestParams, UpdateTaskParams, UpdateTaskRequest,
    },
    service::{NotificationContext, RequestContext},
    transport::{
        StreamableHttpServerConfig, StreamableHttpService,
        streamable_http_server::session::local::LocalSessionManager,
    },
};

use crate::{
    Gateway, GatewayState, Result,
    http_access::{Gatekeeper, HttpAccess, SessionSlot, guard},
};

/// One agent session over Streamable HTTP (it counts against the session cap while it lives).
pub struct HttpGateway(Gateway, #[allow(dead_code)] SessionSlot);

fn unexpected(result: &ServerResult) -> ErrorData {
    ErrorData::internal_error(
        format!("the upstream answered with an unexpected result: {result:?}"),
        None,
    )
}

fn optional<M: Default, P>(params: Option<P>) -> RequestOptionalParam<M, P> {
    RequestOptionalParam {
        method: M::default(),
        params,
        extensions: Default::default(),
    }
}

impl HttpGateway {
    async fn dispatch(
        &self,
        request: ClientRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<ServerResult, ErrorData> {
        <Gateway as Service<RoleServer>>::handle_request(&self.0, request, context).await
    }

    async fn empty(
        &self,
        request: ClientRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.dispatch(request, context).await.map(|_| ())
    }

    async fn notify(
        &self,
        notification: ClientNotification,
        context: NotificationContext<RoleServer>,
    ) {
        let _ =
            <Gateway as Service<RoleServer>>::handle_notification(&self.0, notification, context)
                .await;
    }
}

macro_rules! unpack {
    ($answer:expr, $($variant:ident => $wrap:expr),+ $(,)?) => {
        match $answer? {
            $(ServerResult::$variant(result) => Ok($wrap(result)),)+
            other => Err(unexpected(&other)),
        }
    };
}

impl ServerHandler for HttpGateway {
    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        let request = ClientRequest::InitializeRequest(InitializeRequest::new(request));
        unpack!(self.dispatch(request, context).await, InitializeResult => |r| r)
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let request = ClientRequest::CompleteRequest(CompleteRequest::new(request));
        unpack!(self.dispatch(request, context).await, CompleteResult => |r| r)
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let request = ClientRequest::SetLevelRequest(SetLevelRequest::new(request));
        self.empty(request, context).await
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let request = ClientRequest::GetPromptRequest(GetPromptRequest::new(request));
        unpack!(self.dispatch(request, context).await,
            GetPromptResult => GetPromptResponse::Complete,
            InputRequiredResult => GetPromptResponse::InputRequired)
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let request =
            ClientRequest::ListPromptsRequest(optional::<_, _>(request) as ListPromptsRequest);
        unpack!(self.dispatch(request, context).await, ListPromptsResult => |r| r)
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let request =
            ClientRequest::ListResourcesRequest(optional::<_, _>(request) as ListResourcesRequest);
        unpack!(self.dispatch(request, context).await, ListResourcesResult => |r| r)
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let request = ClientRequest::ListResourceTemplatesRequest(
            optional::<_, _>(request) as ListResourceTemplatesRequest
        );
        unpack!(self.dispatch(request, context).await, ListResourceTemplatesResult => |r| r)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let request = ClientRequest::ReadResourceRequest(ReadResourceRequest::new(request));
        unpack!(self.dispatch(request, context).await,
            ReadResourceResult => ReadResourceResponse::Complete,
            InputRequiredResult => ReadResourceResponse::InputRequired)
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let request = ClientRequest::SubscribeRequest(SubscribeRequest::new(request));
        self.empty(request, context).await
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let request = ClientRequest::UnsubscribeRequest(UnsubscribeRequest::new(request));
        self.empty(request, context).await
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(request));
        unpack!(self.dispatch(request, context).await,
            CallToolResult => CallToolResponse::Complete,
            InputRequiredResult => CallToolResponse::InputRequired,
            CreateTaskResult => CallToolResponse::Task)
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let request =
            ClientRequest::ListToolsRequest(optional::<_, _>(request) as ListToolsRequest);
        unpack!(self.dispatch(request, context).await, ListToolsResult => |r| r)
    }

    async fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        let request = ClientRequest::CustomRequest(request);
        unpack!(self.dispatch(request, context).await, CustomResult => |r| r)
    }

    async fn on_progress(
        &self,
        notification: ProgressNotificationParam,
        context: NotificationContext<RoleServer>,
    ) {
        let notification = ProgressNotification::new(notification);
        self.notify(notification.into(), context).await;
    }

    async fn on_roots_list_changed(&self, context: NotificationContext<RoleServer>) {
        let notification = RootsListChangedNotification::default();
        self.notify(notification.into(), context).await;
    }

    async fn on_custom_notification(
        &self,
        notification: CustomNotification,
        context: NotificationContext<RoleServer>,
    ) {
        self.notify(notification.into(), context).await;
    }

    // Tasks go through the gateway's own routing and recording (tasks.rs), as over stdio.
    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        let request = ClientRequest::GetTaskRequest(GetTaskRequest::new(request));
        unpack!(self.dispatch(request, context).await, GetTaskResult => |r| r)
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let request = ClientRequest::UpdateTaskRequest(UpdateTaskRequest::new(request));
        self.empty(request, context).await
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let request = ClientRequest::CancelTaskRequest(CancelTaskRequest::new(request));
        self.empty(request, context).await
    }

    fn get_info(&self) -> ServerConfig {
        // rmcp answers `tasks/*` itself (method not found) unless the server says it takes
        // them: the gateway does, routing each to the upstream that issued the task (an id no
        // call of the session created is refused).
        let mut info = <Gateway as Service<RoleServer>>::get_info(&self.0);
        info.capabilities
            .extensions
            .get_or_insert_with(Default::default)
            .insert(TASKS_EXTENSION_ID.to_owned(), Default::default());
        info
    }
}

/// The Streamable HTTP endpoint at `/mcp`: one gateway session (with its own upstream
/// connections) per MCP session, behind `access` (token, origins, session cap:
/// http_access.rs). Host checks are rmcp's: only loopback host names.
pub fn http_router(state: Arc<GatewayState>, access: HttpAccess) -> axum::Router {
    let keeper = Gatekeeper::new(access);
    let sessions = keeper.clone();
    let service = StreamableHttpService::new(
        move || Ok(HttpGateway(Gateway::new(state.clone()), sessions.slot())),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    axum::Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(keeper, guard))
}

/// Serves the Streamable HTTP endpoint on `listener` until `shutdown` resolves.
pub async fn serve_http(
    state: Arc<GatewayState>,
    access: HttpAccess,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    axum::serve(listener, http_router(state, access))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
