export { Activation, stripListenEnv, SD_LISTEN_FDS_START, type Env } from './activation.js';
export { createNotifier, type Notifier } from './notify.js';
export { journalAvailable, journalSend, JOURNAL_SOCKET } from './journal.js';
