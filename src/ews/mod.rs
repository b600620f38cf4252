//! EWS (Exchange Web Services): wire types, one module per operation, the SOAP
//! envelope, and the HTTP client (auth, versions, throttling).
