// The caseworker console's only script: live notices. It listens to the
// console's event stream (/notices) and shows each new notification (a
// referral received or answered, a follow-up due) as a link in the page's
// polite live region. Every page works the same without it.
(function () {
  'use strict';
  var region = document.getElementById('live-notices');
  if (!region || !window.EventSource) {
    return;
  }
  var source = new EventSource('/notices');
  source.addEventListener('notice', function (event) {
    var notice;
    try {
      notice = JSON.parse(event.data);
    } catch (e) {
      return;
    }
    if (typeof notice.href !== 'string' || notice.href.charAt(0) !== '/' || notice.href.charAt(1) === '/') {
      return;
    }
    var line = document.createElement('p');
    var link = document.createElement('a');
    link.href = notice.href;
    link.textContent = String(notice.text);
    line.appendChild(link);
    region.appendChild(line);
    region.hidden = false;
  });
  source.addEventListener('ended', function () {
    source.close();
  });
})();
