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
  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: root.getAttribute('data-note'),
      // The headers carry the caseworker's bearer token: open the pane,
      // and never keep them in the browser's storage.
      defaultEditorToolsVisibility: 'headers',
      shouldPersistHeaders: false,
    }),
  );
})();
