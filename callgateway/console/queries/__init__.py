"""What the console's pages read, and the few guarded updates staff make: small named
functions over a session and plain arguments, one module per page. Views parse the request,
check access, call these inside one session, and render."""
