"""Ships the default contract template (anchor strings /sn1/ and /dt1/ for DocuSign tabs)."""

from django.db import migrations

DEFAULT_NAME = "Standard order form"

DEFAULT_BODY = """\
<html>
<head>
<style>
  @page { size: a4 portrait; margin: 2cm 2cm 2.2cm 2cm; }
  body { font-family: Helvetica; font-size: 10pt; color: #1f2937; line-height: 1.4; }
  h1 { font-size: 18pt; color: #1e3a8a; margin: 0 0 4pt 0; }
  h2 { font-size: 12pt; color: #1e3a8a; margin: 14pt 0 4pt 0; }
  .muted { color: #6b7280; }
  table.items { width: 100%; }
  table.items th { background-color: #eef2ff; text-align: left; padding: 4pt; font-size: 9pt; }
  table.items td { border-bottom: 0.5pt solid #d1d5db; padding: 4pt; }
  td.num, th.num { text-align: right; }
  .anchor { color: #ffffff; font-size: 6pt; }
  .sig td { padding: 2pt 0; vertical-align: top; }
  .sig td.space { height: 44pt; }
</style>
</head>
<body>
<h1>Order form and subscription agreement</h1>
<p class="muted">Contract {{ contract_number }} · version {{ version }} · {{ date }}</p>

<h2>Parties</h2>
<p><strong>{{ seller }}</strong> (the “Supplier”) and <strong>{{ account.name }}</strong>
(the “Customer”){% if signer.name %}, represented by {{ signer.name }}{% if signer.title %}, {{ signer.title }}{% endif %}{% endif %}.</p>

<h2>Order: {{ deal.title }}</h2>
{% if line_items %}
<table class="items">
  <tr><th>Item</th><th class="num">Quantity</th><th class="num">Unit price ({{ currency }})</th><th class="num">Total ({{ currency }})</th></tr>
  {% for item in line_items %}
  <tr><td>{{ item.description }}</td><td class="num">{{ item.quantity }}</td><td class="num">{{ item.unit_price }}</td><td class="num">{{ item.total }}</td></tr>
  {% endfor %}
</table>
{% endif %}
<p><strong>Total contract value: {{ currency }} {{ amount }}</strong></p>

<h2>Term and billing</h2>
<p>The subscription runs for {{ term_months }} months{% if start_date %} starting on {{ start_date }}{% endif %}.
Fees are invoiced {{ billing|lower }} in advance and are payable within 30 days of the invoice date.</p>

{% if concessions %}
<h2>Agreed terms</h2>
<ul>
{% for c in concessions %}<li>{{ c.give }}, in exchange for {{ c.get }}.</li>{% endfor %}
</ul>
{% endif %}

<h2>General terms</h2>
<p>Either party may terminate for material breach not remedied within 30 days of written notice.
Each party keeps the other's confidential information confidential. This agreement is governed by
the law of the Supplier's seat. Electronic signatures are binding.</p>

<h2>Signature</h2>
<table class="sig">
  <tr><td width="50%">For {{ account.name }}:</td><td width="50%">Date:</td></tr>
  <tr><td class="space"><span class="anchor">{{ sign_anchor }}</span></td><td class="space"><span class="anchor">{{ date_anchor }}</span></td></tr>
  <tr><td>______________________________</td><td>______________________________</td></tr>
  <tr><td>{{ signer.name }}{% if signer.title %}, {{ signer.title }}{% endif %}</td><td></td></tr>
</table>
</body>
</html>
"""


def add_default(apps, schema_editor):
    ContractTemplate = apps.get_model("contracts", "ContractTemplate")
    if not ContractTemplate.objects.filter(name=DEFAULT_NAME).exists():
        ContractTemplate.objects.create(
            name=DEFAULT_NAME, body=DEFAULT_BODY, version=1, is_default=True, is_active=True
        )


def remove_default(apps, schema_editor):
    ContractTemplate = apps.get_model("contracts", "ContractTemplate")
    ContractVersion = apps.get_model("contracts", "ContractVersion")
    used = ContractVersion.objects.values_list("template_id", flat=True)
    ContractTemplate.objects.filter(name=DEFAULT_NAME, version=1).exclude(pk__in=used).delete()


class Migration(migrations.Migration):
    # Named 0002_initial because other apps' migrations depend on this node.
    dependencies = [("contracts", "0001_initial")]

    operations = [migrations.RunPython(add_default, remove_default)]
