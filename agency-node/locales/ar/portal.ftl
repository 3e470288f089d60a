# The survivor consent portal, Arabic (بوابة الموافقة للناجين، بالعربية). It must have
# exactly the same messages as English (a test checks it). Keep the words plain.

portal-title = موافقتك
skip-to-content = الانتقال إلى المحتوى الرئيسي
quick-exit = خروج سريع
quick-exit-hint = يغلق هذا الموقع فورًا وينتقل إلى صفحة عادية.
language-label = اللغة
language-apply = تغيير
sign-out = تسجيل الخروج
footer-note = لا تستخدم هذه البوابة أي خدمات خارجية. تحفظ فقط ملف تعريف جلسة (كوكي)، ويُحذف عند تسجيل الخروج أو المغادرة.

sign-in-heading = تسجيل الدخول
sign-in-intro = استخدم رمز الموافقة الذي أعطاك إياه الشخص المسؤول عن ملفك، والرقم السري الذي اخترته. في المرة الأولى، اترك الرقم السري فارغًا: ستختار رقمًا بعد ذلك.
code-label = رمز الموافقة
code-hint = 16 حرفًا ورقمًا، مثل ABCD-EFGH-JKMN-PQRS
pin-label = الرقم السري
pin-hint = من 6 إلى 12 رقمًا
sign-in-button = تسجيل الدخول
sign-in-refused = الرمز والرقم السري غير متطابقين. تحقق منهما وحاول مرة أخرى.
sign-in-locked = محاولات كثيرة جدًا. هذا الرمز مقفل حتى { $time } (UTC). يمكن للشخص المسؤول عن ملفك أن يعطيك رمزًا جديدًا.

choose-pin-heading = اختر رقمك السري
choose-pin-intro = ستحتاج إلى هذا الرقم السري مع رمزك في كل مرة تسجل فيها الدخول. لا تخبر به أحدًا. الشخص المسؤول عن ملفك لن يعرفه.
new-pin-label = الرقم السري الجديد
confirm-pin-label = الرقم السري نفسه مرة أخرى
choose-pin-button = حفظ الرقم السري
pin-invalid = الرقم السري من 6 إلى 12 رقمًا.
pin-mismatch = الرقمان السريان غير متطابقين.

home-heading = ملفك لدى { $agency }
grants-heading = من يمكنه رؤية معلوماتك
grants-none = لا يمكن لأي جهة أخرى رؤية معلوماتك.
grant-agency = الجهة
grant-parts = ما يمكنهم رؤيته
grant-purposes = لأي غرض
grant-period = حتى
grant-until = حتى { $date }
grant-no-end = حتى تسحب الإذن
grant-status = الحالة
status-active = ساري
status-revoked = مسحوب
status-expired = منتهٍ
status-pending = لم يبدأ بعد
revoke-button = سحب
give-permission-link = إعطاء إذن لجهة

history-heading = من اطّلع على ملفك
history-none = لم يطّلع أحد على ملفك حتى الآن.
history-when = متى
history-who = من
history-purpose = لماذا
history-seen = ما الذي رأوه
history-nothing-seen = لا شيء
break-glass-badge = وصول طارئ
break-glass-explained = الوصول الطارئ يعني أن شخصًا ما استخدم قاعدة الطوارئ لأنه اعتقد أنك في خطر. تتم مراجعة كل وصول طارئ.

referrals-heading = إحالاتك
referrals-none = ليس لديك أي إحالات.
referral-to = إلى
referral-service = الخدمة
referral-status = الحالة
referral-updated = آخر تغيير

receipts-heading = إيصالاتك
receipts-intro = الإيصال يثبت ما وافقت عليه أو ما سحبته. وهو موقّع من { $agency }.
receipts-none = لا توجد إيصالات بعد.
receipt-download = تنزيل الإيصال
receipt-given = تم إعطاء الإذن
receipt-withdrawn = تم سحب الإذن

grant-heading = إعطاء إذن لجهة
grant-intro = اختر من يمكنه رؤية أي أجزاء من ملفك، ولأي غرض، وحتى متى. يمكنك سحب الإذن في أي وقت.
grant-agency-label = الجهة
grant-categories-legend = أي أجزاء من ملفك
grant-purposes-legend = لأي غرض
grant-until-label = حتى (التاريخ)
grant-until-hint = أقصى مدة من اليوم بالأيام: { $days }
grant-review-button = مراجعة
cancel = إلغاء
grant-confirm-heading = يُرجى التحقق قبل الموافقة
grant-confirm-summary = ستتمكن { $agency } من رؤية:
grant-confirm-purposes = فقط من أجل:
grant-confirm-button = نعم، أعطِ الإذن
revoke-confirm-heading = هل تريد سحب الإذن؟
revoke-confirm-summary = لن ترى { $agency } هذه المعلومات بعد الآن، ابتداءً من طلبها التالي.
revoke-confirm-button = نعم، اسحب الإذن
done-heading = تم
grant-done = تم إعطاء الإذن.
revoke-done = تم سحب الإذن. يسري ذلك فورًا.
home-link = العودة إلى ملفك
error-no-agency = اختر جهة.
error-no-category = اختر جزءًا واحدًا على الأقل من ملفك.
error-no-purpose = اختر غرضًا واحدًا على الأقل.
error-bad-date = اختر تاريخًا بعد اليوم وضمن المدة المسموح بها.
error-heading = حدث خطأ ما
error-csrf = انتهت صلاحية هذا النموذج. ارجع إلى الصفحة السابقة، وأعد تحميلها، وحاول مرة أخرى.
error-session = انتهت جلستك. يُرجى تسجيل الدخول مرة أخرى.
error-not-found = هذه الصفحة غير موجودة.
error-internal = حدث خطأ من جهتنا. يُرجى المحاولة مرة أخرى لاحقًا.

category-identity = من أنت (الاسم، تاريخ الميلاد، الوثائق)
category-contact = كيف نتواصل معك وأين تقيم
category-case = حالتك: الاحتياجات والخدمات والملاحظات
category-health = ملاحظات صحية
category-legal = أمور قانونية

purpose-case-management = متابعة حالتك
purpose-referral = إحالتك إلى خدمة
purpose-service-coordination = تنسيق الخدمات المقدمة لك
purpose-shelter-placement = إيجاد مكان آمن لإقامتك
purpose-legal-assistance = مساعدة قانونية
purpose-health-care = رعاية صحية
purpose-investigation = تحقيق جنائي
purpose-audit = تدقيق السجلات
purpose-emergency = حالة طارئة

kind-shelter = دار إيواء
kind-legal-aid = مساعدة قانونية
kind-health-clinic = عيادة صحية
kind-labour-inspectorate = تفتيش العمل
kind-child-protection = حماية الطفل
kind-law-enforcement = الشرطة أو جهات إنفاذ القانون
kind-outreach = فريق ميداني
kind-oversight = جهة رقابية

referral-status-pending = بانتظار الرد
referral-status-accepted = مقبولة
referral-status-declined = مرفوضة
referral-status-completed = مكتملة
referral-status-withdrawn = مسحوبة

service-shelter = إيواء
service-legal-aid = مساعدة قانونية
service-medical = رعاية طبية
service-psychosocial = دعم نفسي واجتماعي
service-interpretation = ترجمة فورية
service-employment = عمل
service-education = تعليم
service-repatriation = العودة إلى الوطن
