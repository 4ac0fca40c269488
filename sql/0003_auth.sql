-- SMART Backend Services: the client registry, the assertion replay cache, the JWKS cache
-- and the audit trail (core/auth/).
--
-- A client authenticates with a JWT signed by a key from its JWK Set, given by value (jwks)
-- or by URL (jwks_url, fetched by the server and cached in jwks_cache with an expiry taken
-- from the response's Cache-Control, bounded). allowed_scopes is the pre-authorization: a
-- token's scopes are the intersection of what the client asks for and this. allowed_groups,
-- when not NULL, restricts the client to Group-level exports of those Groups.
-- Access tokens are self-contained (signed by the server), so no table holds them; disabling
-- a client refuses its next token request, kick-off, poll and cancel at once, and its
-- downloads once its current token expires (at most the token lifetime, <= 300 s).

CREATE TABLE auth_client (
    client_id         text        PRIMARY KEY,
    name              text        NOT NULL,
    jwks              jsonb,
    jwks_url          text,
    allowed_scopes    text        NOT NULL,
    allowed_groups    text[],
    enabled           boolean     NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    jwks_cache        jsonb,
    jwks_fetched_at   timestamptz,
    jwks_cache_expires timestamptz,
    CHECK ((jwks IS NULL) <> (jwks_url IS NULL))
);

-- Assertion ids seen, for replay detection across every nginx worker and node. A row is
-- kept until the assertion it belongs to could no longer be accepted (its exp plus the
-- allowed clock skew); expired rows are deleted by the token endpoint as it goes.
CREATE TABLE auth_jti (
    client_id   text        NOT NULL,
    jti         text        NOT NULL,
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX auth_jti_expires ON auth_jti (expires_at);

-- Who did what, when, with what result. Never tokens, assertions or keys.
--   action: token | kickoff | status | cancel | download
--   result: the HTTP status answered
CREATE TABLE audit_event (
    event_id    bigserial   PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    client_id   text,                   -- NULL when the caller could not be identified
    action      text        NOT NULL,
    target      text,                   -- job id, job/file, group, ...
    result      integer     NOT NULL,
    detail      text,
    remote_addr text
);
CREATE INDEX audit_event_at ON audit_event (at);
CREATE INDEX audit_event_client ON audit_event (client_id, at);
