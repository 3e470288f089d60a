# The survivor consent portal, English. Every other language must have
# exactly these messages (a test checks it). Keep the words plain.

portal-title = Your consent
skip-to-content = Skip to main content
quick-exit = Quick exit
quick-exit-hint = Leaves this site at once for a neutral page.
language-label = Language
language-apply = Change
sign-out = Sign out
footer-note = This portal uses no outside services. It keeps only a session cookie, which ends when you sign out or leave.

sign-in-heading = Sign in
sign-in-intro = Use the consent code your caseworker gave you and the PIN you chose. The first time, leave the PIN empty: you will choose one next.
code-label = Consent code
code-hint = 16 letters and digits, for example ABCD-EFGH-JKMN-PQRS
pin-label = PIN
pin-hint = 6 to 12 digits
sign-in-button = Sign in
sign-in-refused = That code and PIN do not match. Check them and try again.
sign-in-locked = Too many attempts. This code is locked until { $time } (UTC). Your caseworker can give you a new code.

choose-pin-heading = Choose your PIN
choose-pin-intro = You will need this PIN with your code every time you sign in. Do not share it. Your caseworker will not know it.
new-pin-label = New PIN
confirm-pin-label = The same PIN again
choose-pin-button = Save PIN
pin-invalid = A PIN is 6 to 12 digits.
pin-mismatch = The two PINs are not the same.

home-heading = Your record at { $agency }
grants-heading = Who may see your information
grants-none = No other agency may see your information.
grant-agency = Agency
grant-parts = What they may see
grant-purposes = What for
grant-period = Until
grant-until = Until { $date }
grant-no-end = Until you withdraw it
grant-status = Status
status-active = Active
status-revoked = Withdrawn
status-expired = Ended
status-pending = Not started yet
revoke-button = Withdraw
give-permission-link = Give an agency permission

history-heading = Who looked at your record
history-none = No one has looked at your record yet.
history-when = When
history-who = Who
history-purpose = Why
history-seen = What they saw
history-nothing-seen = Nothing
break-glass-badge = Emergency access
break-glass-explained = Emergency access means someone used the emergency rule because they believed you were in danger. Every emergency access is reviewed.

referrals-heading = Your referrals
referrals-none = You have no referrals.
referral-to = To
referral-service = Service
referral-status = Status
referral-updated = Last change

receipts-heading = Your receipts
receipts-intro = A receipt proves what you agreed to or withdrew. It is signed by { $agency }.
receipts-none = No receipts yet.
receipt-download = Download receipt
receipt-given = Permission given
receipt-withdrawn = Permission withdrawn

grant-heading = Give an agency permission
grant-intro = Choose who may see which parts of your record, what for, and until when. You can withdraw it at any time.
grant-agency-label = Agency
grant-categories-legend = Which parts of your record
grant-purposes-legend = What for
grant-until-label = Until (date)
grant-until-hint = At most { $days } days from today.
grant-review-button = Review
cancel = Cancel
grant-confirm-heading = Please check before you agree
grant-confirm-summary = { $agency } will be able to see:
grant-confirm-purposes = Only for:
grant-confirm-button = Yes, give permission
revoke-confirm-heading = Withdraw permission?
revoke-confirm-summary = { $agency } will no longer see this information, from the very next time they ask.
revoke-confirm-button = Yes, withdraw
done-heading = Done
grant-done = Permission given.
revoke-done = Permission withdrawn. It takes effect immediately.
home-link = Back to your record
error-no-agency = Choose an agency.
error-no-category = Choose at least one part of your record.
error-no-purpose = Choose at least one purpose.
error-bad-date = Choose a date after today and within the allowed time.
error-heading = Something went wrong
error-csrf = This form has expired. Go back, reload the page and try again.
error-session = Your session has ended. Please sign in again.
error-not-found = That page does not exist.
error-internal = Something went wrong on our side. Please try again later.

category-identity = Who you are (name, date of birth, documents)
category-contact = How to reach you and where you are staying
category-case = Your case: needs, services and notes
category-health = Health notes
category-legal = Legal matters

purpose-case-management = Managing your case
purpose-referral = Referring you to a service
purpose-service-coordination = Coordinating your services
purpose-shelter-placement = Finding you a safe place to stay
purpose-legal-assistance = Legal help
purpose-health-care = Health care
purpose-investigation = A criminal investigation
purpose-audit = Checking the records (audit)
purpose-emergency = An emergency

kind-shelter = shelter
kind-legal-aid = legal aid
kind-health-clinic = health clinic
kind-labour-inspectorate = labour inspectorate
kind-child-protection = child protection
kind-law-enforcement = police or law enforcement
kind-outreach = outreach
kind-oversight = oversight

referral-status-pending = Waiting for an answer
referral-status-accepted = Accepted
referral-status-declined = Declined
referral-status-completed = Completed
referral-status-withdrawn = Withdrawn

service-shelter = Shelter
service-legal-aid = Legal aid
service-medical = Medical care
service-psychosocial = Counselling and support
service-interpretation = Interpretation
service-employment = Work
service-education = Education
service-repatriation = Going home
