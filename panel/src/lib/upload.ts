// Uploading a file for a reply: `POST /media` with the file as the body, its type and name in
// headers, as the signed-in agent. XMLHttpRequest rather than fetch, for upload progress.
import { session } from './session.svelte';

export interface Uploaded {
  id: string;
  kind: string;
  mimeType: string | null;
  size: number;
  fileName: string | null;
}

/** Why an upload failed: the server's code (TOO_LARGE, VALIDATION…), or NETWORK. */
export class UploadError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'UploadError';
  }
}

/**
 * The name's UTF-8 bytes, one character per byte: a header value is a byte string, and the
 * server reads X-File-Name as UTF-8.
 */
export function headerBytes(name: string): string {
  const clean = [...name].map((char) => (char.charCodeAt(0) < 32 || char === '\u007f' ? '_' : char)).join('');
  return String.fromCharCode(...new TextEncoder().encode(clean));
}

function send(file: File, token: string, onprogress: (fraction: number) => void): Promise<Uploaded> {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open('POST', '/media');
    request.setRequestHeader('authorization', `Bearer ${token}`);
    request.setRequestHeader('content-type', file.type || 'application/octet-stream');
    request.setRequestHeader('x-file-name', headerBytes(file.name));
    request.upload.onprogress = (event) => {
      if (event.lengthComputable && event.total > 0) onprogress(event.loaded / event.total);
    };
    request.onerror = () => reject(new UploadError('the server cannot be reached', 'NETWORK', 0));
    request.onload = () => {
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(request.responseText) as Record<string, unknown>;
      } catch {
        // not JSON: the status says enough
      }
      if (request.status === 201 || request.status === 200) {
        resolve(body as unknown as Uploaded);
      } else {
        const code = typeof body.code === 'string' ? body.code : String(request.status);
        const message = typeof body.error === 'string' ? body.error : `HTTP ${request.status}`;
        reject(new UploadError(message, code, request.status));
      }
    };
    request.send(file);
  });
}

/** Uploads `file`; a refused token is refreshed once. */
export async function upload(file: File, onprogress: (fraction: number) => void): Promise<Uploaded> {
  const token = await session.accessToken();
  if (!token) throw new UploadError('not signed in', 'UNAUTHENTICATED', 401);
  try {
    return await send(file, token, onprogress);
  } catch (error) {
    if (!(error instanceof UploadError) || error.status !== 401 || !(await session.refresh())) throw error;
    return send(file, session.tokens?.accessToken ?? '', onprogress);
  }
}
