// usersvc GraphiQL bootstrap. Loaded by /graphql (index.html) after
// React 18, ReactDOM 18 and the GraphiQL 3 UMD bundle, all served by usersvc
// from /graphiql/*. No inline script, no eval, no CDN, no network beyond the
// page's own origin, so it runs under the strict CSP usersvc sends.
(function () {
  'use strict';

  var DEFAULT_HEADERS = '{"Authorization": "Bearer PASTE-A-TOKEN-HERE"}';

  var DEFAULT_QUERY = [
    '# usersvc GraphiQL',
    '#',
    '# Most operations need a bearer token. usersvc prints',
    '# a ready-to-paste token when it starts: open the',
    '# "Headers" tab below and replace PASTE-A-TOKEN-HERE',
    '# with it. Headers are kept in this browser\'s',
    '# localStorage, so the token survives a reload.',
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
  var fetcher = GraphiQL.createFetcher({
    url: url,
    enableIncrementalDelivery: false,
    fetch: function (input, init) {
      init = init || {};
      init.credentials = 'same-origin';
      return window.fetch(input, init);
    }
  });

  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: DEFAULT_QUERY,
      defaultHeaders: DEFAULT_HEADERS,
      isHeadersEditorEnabled: true,
      defaultEditorToolsVisibility: 'headers',
      shouldPersistHeaders: true
    })
  );
})();
