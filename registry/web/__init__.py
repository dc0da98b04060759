"""The community hub's web pages (issue 10): server-rendered Jinja2 templates over the same
services the API routes call, a session cookie for signed-in people, CSRF on every form, strict
security headers, and a little JS for copy buttons only."""
