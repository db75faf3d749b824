import { DateTime } from 'luxon';
import type { Identity, Person, Weekday, WorkingHours } from './types.js';

// GitHub's privacy addresses: "12345+alice@users.noreply.github.com" or "alice@users.noreply.github.com".
// They are nobody's inbox, but the part before the @ is the login, which the people section can map.
const GITHUB_NOREPLY = /^(?:\d+\+)?([^@]+)@users\.noreply\.github\.com$/i;

export interface Directory {
  people: readonly Person[];
  /** Logins (lower case) of bots whose commits are attributed to whoever merged them. */
  bots: readonly string[];
}

/** True for dependency bots and the like: their changes are owned by the human who merged them. */
export function isBot(identity: Identity, bots: readonly string[]): boolean {
  const login = loginOf(identity)?.toLowerCase();
  if (login === undefined) return false;
  const bare = login.replace(/\[bot\]$/, '');
  return login.endsWith('[bot]') || bots.includes(bare);
}

function loginOf(identity: Identity): string | undefined {
  if (identity.login) return identity.login;
  const noreply = identity.email ? GITHUB_NOREPLY.exec(identity.email) : null;
  return noreply?.[1];
}

/**
 * The email that names this identity for paging and DMs: a configured person's primary email when the identity
 * matches one (by any of their emails, or by login), else the identity's own email unless it is a no-reply
 * address. Undefined when the identity cannot be reached.
 */
export function resolveEmail(identity: Identity, directory: Directory): string | undefined {
  const person = findPerson(identity, directory.people);
  if (person) return person.email;
  if (identity.email && !GITHUB_NOREPLY.test(identity.email)) return identity.email.toLowerCase();
  return undefined;
}

export function findPerson(identity: Identity, people: readonly Person[]): Person | undefined {
  const email = identity.email?.toLowerCase();
  if (email) {
    const byEmail = people.find((p) => p.email === email || p.emails.includes(email));
    if (byEmail) return byEmail;
  }
  const login = loginOf(identity)?.toLowerCase();
  if (login) return people.find((p) => p.logins.includes(login));
  return undefined;
}

const WEEKDAYS: readonly Weekday[] = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

/**
 * Whether `now` falls in the person's working hours, read in their own timezone. People without configured
 * hours are always reachable: the page then goes to them and PagerDuty's own notification rules apply.
 */
export function isWorkingTime(person: Person | undefined, now: number): boolean {
  const hours = person?.workingHours;
  if (!person || !hours) return true;
  const local = DateTime.fromMillis(now, { zone: person.timezone ?? 'utc' });
  return withinHours(hours, local);
}

function withinHours(hours: WorkingHours, local: DateTime): boolean {
  const minute = local.hour * 60 + local.minute;
  const today = WEEKDAYS[local.weekday - 1] as Weekday;
  if (hours.startMinute <= hours.endMinute) {
    return hours.days.includes(today) && minute >= hours.startMinute && minute < hours.endMinute;
  }
  // A shift over midnight (22:00–06:00) belongs to the day it started on.
  const yesterday = WEEKDAYS[(local.weekday + 5) % 7] as Weekday;
  return (
    (hours.days.includes(today) && minute >= hours.startMinute) ||
    (hours.days.includes(yesterday) && minute < hours.endMinute)
  );
}
