// usersvc GraphiQL bootstrap. Loaded by /graphql (index.html) after
// React 18, ReactDOM 18 and the GraphiQL 3 UMD bundle, all served by usersvc
// from /graphiql/*. No inline script, no eval, no CDN, no network beyond the
// page's own origin, so it runs under the strict CSP usersvc sends.
(function () {
  'use strict';

  var PLACEHOLDER_HEADERS = '{"Authorization": "Bearer PASTE-A-TOKEN-HERE"}';

  // With the development key in force, usersvc puts its development token in a
  // <meta> tag: GraphiQL then starts with it and loads the schema at once.
  var devMeta = document.querySelector('meta[name="usersvc-dev-token"]');
  var devToken = devMeta ? devMeta.getAttribute('content') : '';

  // Headers are kept here (not in GraphiQL's own storage), so that this script
  // knows what GraphiQL starts with. The development token is never stored.
  var STORAGE_KEY = 'usersvc:graphiql:headers';
  function storedHeaders() {
    try {
      return window.localStorage.getItem(STORAGE_KEY);
    } catch (e) {
      return null;
    }
  }
  function storeHeaders(text) {
    try {
      window.localStorage.setItem(STORAGE_KEY, text);
    } catch (e) {
      // Private windows may refuse storage: the headers then last as long as the page.
    }
  }
  var initialHeaders = devToken
    ? JSON.stringify({ Authorization: 'Bearer ' + devToken })
    : storedHeaders() || PLACEHOLDER_HEADERS;

  // The bearer token in a Headers editor text, or '' when there is none (yet):
  // the schema is fetched only once there is one, so that opening the page
  // without a token shows no error and sends no request bound to be refused.
  function tokenIn(text) {
    var headers;
    try {
      headers = JSON.parse(text || '{}');
    } catch (e) {
      return '';
    }
    if (!headers || typeof headers !== 'object') return '';
    var auth = headers.Authorization || headers.authorization;
    if (typeof auth !== 'string') return '';
    var m = /^\s*Bearer\s+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)\s*$/.exec(auth);
    return m ? m[1] : '';
  }

  var DEFAULT_QUERY = [
    '# usersvc GraphiQL',
    '#',
    '# Most operations need a bearer token. With its',
    '# development key, usersvc starts GraphiQL with one.',
    '# Otherwise open the "Headers" tab below and replace',
    '# PASTE-A-TOKEN-HERE with a token; the schema loads',
    '# once there is one. Headers are kept in this',
    '# browser\'s localStorage, so a token survives a reload.',
    '#',
    '# Run: Ctrl-Enter (Cmd-Enter on macOS). Queries and',
    '# mutations go as JSON in a POST to /graphql here.',
    '',
    '{',
    '  users(first: 5) {',
    '    totalCount',
    '    nodes {',
    '      profileId',
    '      userName',
    '      contactEmail',
    '    }',
    '  }',
    '}',
    ''
  ].join('\n');

  // Full-height layout, set through the CSSOM (not a <style> element or a
  // style attribute), so it needs no CSP allowance.
  var root = document.getElementById('graphiql');
  document.documentElement.style.height = '100%';
  document.body.style.height = '100%';
  document.body.style.margin = '0';
  document.body.style.overflow = 'hidden';
  root.style.height = '100vh';
  root.textContent = '';

  // Same-origin URL built from the page's own location: never another host.
  var url = new URL('/graphql', window.location.href).toString();

  // createGraphiQLFetcher (from @graphiql/toolkit, bundled in graphiql.min.js)
  // sends queries, mutations and the schema introspection as
  // POST application/json with the headers from the Headers editor, and parses
  // a plain JSON response. enableIncrementalDelivery: false keeps it to that
  // (no "Accept: multipart/mixed" / @defer streaming). No subscriptionUrl or
  // wsClient is given, so it never opens a WebSocket.
  function makeFetcher() {
    return GraphiQL.createFetcher({
      url: url,
      enableIncrementalDelivery: false,
      fetch: function (input, init) {
        init = init || {};
        init.credentials = 'same-origin';
        return window.fetch(input, init);
      }
    });
  }

  // GraphiQL fetches the schema when its `schema` prop is undefined and not
  // when it is null; a new fetcher makes it fetch again (with the headers in
  // the editor at that moment), so a new token loads the schema for it.
  function App() {
    var state = React.useState(tokenIn(initialHeaders));
    var token = state[0];
    var setToken = state[1];
    var fetcher = React.useMemo(makeFetcher, [token]);
    var onEditHeaders = React.useCallback(function (text) {
      if (!devToken) storeHeaders(text);
      setToken(tokenIn(text));
    }, []);
    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      schema: token ? undefined : null,
      defaultQuery: DEFAULT_QUERY,
      headers: initialHeaders,
      onEditHeaders: onEditHeaders,
      isHeadersEditorEnabled: true,
      defaultEditorToolsVisibility: 'headers',
      shouldPersistHeaders: false
    });
  }

  ReactDOM.createRoot(root).render(React.createElement(App));
})();
