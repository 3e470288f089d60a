// Starts GraphiQL on the page served by exchange-graphiql. The page has no
// inline script (its Content-Security-Policy allows scripts from its own
// origin only), so the configuration comes from data- attributes of the
// #graphiql element: the endpoint and the note shown in the query editor.
(function () {
  'use strict';
  var root = document.getElementById('graphiql');
  // GraphiQL's dialogs add <style> elements and give them the nonce in
  // __webpack_nonce__; the page's policy allows styles with this nonce.
  var script = document.currentScript;
  if (script && script.nonce) {
    window.__webpack_nonce__ = script.nonce;
  }
  var fetcher = GraphiQL.createFetcher({ url: root.getAttribute('data-endpoint') });
  // GraphiQL 3 introspects with the Headers pane as it was at its last
  // render, so "Re-fetch GraphQL schema" right after pasting a token would
  // go without it (and the gateway answers introspection to authenticated
  // callers only). Every request takes the pane's current headers instead.
  var currentHeaders = null;
  function fetchWithCurrentHeaders(params, options) {
    var headers = options && options.headers;
    if (currentHeaders !== null) {
      try {
        headers = currentHeaders.trim() ? JSON.parse(currentHeaders) : {};
      } catch (invalid) {
        // GraphiQL itself refuses to run with invalid headers.
      }
    }
    return fetcher(params, Object.assign({}, options, { headers: headers }));
  }
  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetchWithCurrentHeaders,
      onEditHeaders: function (value) {
        currentHeaders = value;
      },
      defaultQuery: root.getAttribute('data-note'),
      // The headers carry the caseworker's bearer token: open the pane,
      // and never keep them in the browser's storage.
      defaultEditorToolsVisibility: 'headers',
      shouldPersistHeaders: false,
    }),
  );
})();
