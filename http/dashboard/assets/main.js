// Loaded last: every other script's functions and wiring exist before the first request.
'use strict';

refreshAll();
loadEventHistory().then(connectEvents);
