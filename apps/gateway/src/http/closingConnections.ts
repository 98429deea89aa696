// The client connections the gateway's server holds open, and how they end when it
// closes, so that an idle one never holds the close (docs/config.md, "Shutdown"):
// - each HTTP/2 session gets a graceful GOAWAY (`session.close()`): one with no open
//   stream ends at once; one with streams open ends when the last of them ends, and
//   opens no new one (the client refuses new requests on it, and a stream already on
//   the wire past the GOAWAY is refused with REFUSED_STREAM, never processed). Node
//   20's http2 server does not do this itself on close(); Fastify does it only with
//   forceCloseConnections: true (which also destroys HTTP/1.1 connections with a
//   request in flight) and never for a server made by a serverFactory (laneServer.ts);
// - an HTTP/1.1 keep-alive connection is closed once it is idle: at once when it
//   is, and when its last response ends when it is not (a connection whose request
//   was in flight when close began would otherwise wait for its keep-alive timeout,
//   or for ever over TLS, where the HTTP/1.1 fallback has none). A request already
//   pipelined behind it is still read and answered (the parser is busy, so the
//   connection is not idle).
// What is still running when the gateway closes is cancelled by the gateway
// (apiGatewayActor.ts), which ends its stream or response; the connection then
// ends as above, over either protocol. What is not running cannot be cancelled: a
// request whose body is still arriving (a client that stopped sending mid-body),
// over either protocol. CLOSE_GRACE_MS after the close began, every connection
// still open is destroyed and every session still open is destroyed, so such a
// client holds the close for that long at most, never until the CLI gives up.
//
// Invariant: `sessions` holds the sessions the server accepted and that have not
// closed (each removed on its 'close'), so it never outgrows the open connections.

import { Server as HttpServer, type Server } from 'node:http';
import type { Http2SecureServer, Http2Server, ServerHttp2Session } from 'node:http2';

/**
 * Node's HTTP/1.1 connection tracking: on http.Server, and on the HTTP/2 server
 * with allowHTTP1 (Node 20 has it there too; its types leave it out).
 */
interface IdleCloser {
  closeIdleConnections?: () => void;
}

/** How often, while the server closes, connections that have gone idle are closed. */
const IDLE_SWEEP_MS = 50;

/**
 * How long after the close began connections still open are destroyed. By then what was running has been
 * cancelled and has ended its answer (milliseconds); what is left is a client that stopped mid-request.
 */
export const CLOSE_GRACE_MS = 5_000;

interface ConnectionCloser extends IdleCloser {
  closeAllConnections?(): void;
}

export class ClosingConnections {
  private readonly sessions = new Set<ServerHttp2Session>();
  private closing = false;
  private sweep: NodeJS.Timeout | undefined;
  private force: NodeJS.Timeout | undefined;

  /** `h2`: the server is an HTTP/2 one (the gateway's: TLS, HTTP/1.1 allowed), whose sessions are tracked. */
  constructor(
    private readonly server: Server | Http2SecureServer | Http2Server,
    h2: boolean,
    private readonly graceMs = CLOSE_GRACE_MS,
  ) {
    if (h2) (server as Http2SecureServer | Http2Server).on('session', this.opened);
    server.once('close', this.stopTimers);
  }

  /** HTTP/2 sessions open now (for tests and the status of a close). */
  get openSessions(): number {
    return this.sessions.size;
  }

  private readonly opened = (session: ServerHttp2Session): void => {
    // A session whose handshake ended after close began gets its GOAWAY before any stream.
    if (this.closing) {
      session.close();
      return;
    }
    this.sessions.add(session);
    session.once('close', () => { this.sessions.delete(session); });
  };

  /**
   * The server closes: GOAWAY to every HTTP/2 session, idle HTTP/1.1 connections
   * closed now and as the others go idle, until the server has closed.
   */
  close(): void {
    if (this.closing) return;
    this.closing = true;
    for (const session of this.sessions) session.close();
    this.closeIdle();
    this.sweep = setInterval(this.closeIdle, IDLE_SWEEP_MS);
    this.sweep.unref();
    this.force = setTimeout(this.destroyAll, this.graceMs);
    this.force.unref();
  }

  /** The grace is over: whatever is still open goes, HTTP/2 sessions and HTTP/1.1 connections alike. */
  private readonly destroyAll = (): void => {
    this.force = undefined;
    for (const session of this.sessions) session.destroy();
    // Node 20's HTTP/2 server keeps its HTTP/1.1 connections in the same list as http.Server, and has
    // closeIdleConnections for them but not closeAllConnections: http.Server's own does it there too (and
    // nothing where the server holds no such list).
    const server = this.server as ConnectionCloser;
    if (server.closeAllConnections !== undefined) server.closeAllConnections();
    else HttpServer.prototype.closeAllConnections.call(this.server as Server);
  };

  private readonly closeIdle = (): void => {
    (this.server as IdleCloser).closeIdleConnections?.();
  };

  private readonly stopTimers = (): void => {
    if (this.sweep !== undefined) clearInterval(this.sweep);
    this.sweep = undefined;
    if (this.force !== undefined) clearTimeout(this.force);
    this.force = undefined;
  };
}
