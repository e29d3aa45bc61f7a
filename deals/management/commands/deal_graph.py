"""Print the deal state machine as a Mermaid diagram, generated from Deal.state."""

from django.core.management.base import BaseCommand

from deals.selectors import state_graph_mermaid


class Command(BaseCommand):
    help = "Print the deal transition graph (Mermaid) read from the model."

    def add_arguments(self, parser):
        parser.add_argument("--markdown", action="store_true", help="Wrap in a ```mermaid fence.")

    def handle(self, *args, markdown=False, **options):
        graph = state_graph_mermaid()
        self.stdout.write(f"```mermaid\n{graph}\n```" if markdown else graph)
