"""Synthetic UK-style name and postcode material for the matching benchmark.

Written for this benchmark: common given and family names with rough relative weights
(the popular ones are far more frequent, as in the real register) plus a generated long
tail of rare names, so that common-name collisions are as hard as in real life. No
personal data.
"""

from __future__ import annotations

import random
from typing import Final

BOYS: Final = """
Oliver 90 Jack 88 Harry 85 George 80 Noah 75 Charlie 74 Jacob 70 Alfie 66 Thomas 65 Oscar 64
William 63 James 62 Leo 60 Joshua 58 Freddie 55 Archie 55 Ethan 52 Isaac 50 Henry 48 Joseph 48
Samuel 46 Max 45 Daniel 45 Lucas 44 Mohammed 44 Muhammad 30 Logan 40 Arthur 40 Theo 40 Dylan 38
Riley 37 Alexander 37 Adam 36 Benjamin 36 Finley 35 Harrison 35 Lewis 34 Mason 34 Luke 33 Sebastian 32
Matthew 32 Toby 32 Jake 31 Elijah 30 Ryan 30 Tyler 30 Liam 30 Edward 29 Reuben 28 Jayden 28
Callum 28 Louie 27 Kai 27 Ronnie 26 Albie 26 Michael 26 Rory 25 Jenson 25 Zachary 24 David 24
Tommy 24 Hugo 23 Frankie 23 Ollie 22 Owen 22 Stanley 22 Elliot 21 Nathan 21 Aaron 21 Bobby 20
Connor 20 Kian 20 Jude 20 Ben 19 Sam 19 Jamie 19 Cameron 18 Caleb 18 Ellis 18 Harvey 18
Louis 18 Christopher 17 Andrew 17 Ibrahim 17 Aiden 16 Bradley 16 Kieran 16 Luca 16 Rhys 16 Evan 15
Ali 15 Finn 15 Gabriel 15 Jonathan 15 Patrick 14 Sonny 14 Tristan 14 Declan 13 Robert 13 Ahmed 13
Jasper 12 Ezra 12 Felix 12 Rowan 12 Blake 12 Elliott 12 Seth 11 Austin 11 Corey 11 Jordan 11
Marcus 10 Nicholas 10 Peter 10 Reggie 10 Jesse 10 Alex 10 Aidan 9 Dominic 9 Shane 9 Shaun 9
Sean 9 Stephen 8 Steven 8 Anthony 8 Richard 8 Philip 7 Frederick 7 Alfred 7 Archibald 3 Rupert 5
Cian 5 Oisin 4 Zain 8 Yusuf 8 Omar 8 Hamza 8 Arjun 6 Rohan 6 Aarav 5 Kacper 5
Jakub 5 Oskar 4 Bailey 8 Brandon 8 Kyle 8 Jay 7 Kayden 7 Leon 7 Tobias 6 Vincent 4
"""

GIRLS: Final = """
Olivia 90 Amelia 88 Isla 80 Ava 78 Emily 76 Sophia 60 Grace 60 Mia 58 Poppy 56 Ella 56
Lily 55 Evie 54 Isabella 52 Sophie 52 Ivy 50 Freya 50 Harper 40 Chloe 48 Jessica 46 Charlotte 46
Millie 44 Daisy 44 Ruby 44 Florence 40 Alice 40 Sienna 38 Rosie 38 Matilda 36 Evelyn 36 Phoebe 35
Willow 35 Isabelle 34 Elsie 34 Erin 34 Eva 33 Lucy 33 Holly 32 Scarlett 32 Emma 32 Maisie 31
Ellie 31 Amber 30 Imogen 30 Layla 30 Lola 29 Hannah 29 Megan 28 Zara 28 Molly 28 Eliza 27
Esme 27 Lottie 26 Bella 26 Elizabeth 25 Katie 25 Lexi 24 Summer 24 Georgia 24 Maya 23 Aria 23
Violet 22 Rose 22 Niamh 20 Abigail 20 Harriet 20 Eleanor 20 Anna 20 Thea 19 Leah 19 Amy 19
Zoe 18 Bethany 18 Jasmine 18 Lauren 18 Caitlin 17 Rebecca 17 Paige 17 Aisha 16 Fatima 16 Maryam 15
Madison 15 Georgina 14 Heidi 14 Francesca 14 Victoria 14 Alexandra 13 Catherine 13 Katherine 10 Kathryn 6 Samantha 12
Natalie 12 Courtney 12 Abbie 12 Lydia 12 Ellen 11 Nicole 11 Leila 11 Naomi 11 Jade 11 Kayla 10
Stephanie 10 Rachel 10 Sarah 10 Laura 10 Gemma 9 Jennifer 9 Louise 9 Susan 4 Margaret 3 Mary 6
Josephine 5 Penelope 6 Ada 10 Iris 9 Nancy 9 Orla 9 Aoife 6 Siobhan 4 Zuzanna 5 Amelie 9
Hallie 8 Darcie 9 Darcey 5 Libby 9 Eloise 9 Mila 12 Luna 10 Nina 6 Tia 7 Skye 8
"""

FAMILY: Final = """
Smith 1260 Jones 900 Williams 750 Taylor 600 Brown 560 Davies 500 Evans 420 Wilson 410 Thomas 400 Johnson 370
Roberts 360 Robinson 340 Thompson 330 Wright 320 Walker 310 White 300 Edwards 290 Hughes 290 Green 280 Hall 280
Lewis 270 Harris 270 Clarke 260 Patel 260 Jackson 250 Wood 250 Turner 240 Martin 240 Cooper 240 Hill 230
Ward 230 Morris 230 Moore 220 Clark 220 Lee 220 King 220 Baker 210 Harrison 210 Morgan 210 Allen 200
James 200 Scott 200 Phillips 190 Watson 190 Davis 190 Parker 180 Price 180 Bennett 180 Young 180 Griffiths 170
Mitchell 170 Kelly 170 Cook 170 Carter 170 Richardson 160 Bailey 160 Collins 160 Bell 160 Shaw 150 Murphy 150
Miller 150 Cox 150 Richards 150 Khan 150 Marshall 140 Anderson 140 Simpson 140 Ellis 140 Adams 140 Singh 140
Begum 130 Wilkinson 130 Foster 130 Chapman 130 Powell 130 Webb 130 Rogers 120 Gray 120 Mason 120 Ali 120
Hunt 120 Hussain 120 Campbell 120 Matthews 120 Owen 110 Palmer 110 Holmes 110 Mills 110 Barnes 110 Knight 110
Lloyd 110 Butler 110 Russell 100 Barker 100 Fisher 100 Stevens 100 Jenkins 100 Murray 100 Dixon 100 Harvey 100
Graham 90 Pearson 90 Ahmed 90 Fletcher 90 Walsh 90 Kaur 90 Gibson 90 Howard 90 Andrews 90 Stewart 90
Elliott 80 Reynolds 80 Saunders 80 Payne 80 Fox 80 Ford 80 Pearce 80 Day 80 Brooks 80 West 80
Lawrence 80 Cole 80 Atkinson 80 Bradley 70 Spencer 70 Gill 70 Dawson 70 Ball 70 Burton 70 O'Brien 70
Watts 70 Rose 70 Booth 70 Perry 70 Ryan 70 Grant 70 Wells 70 Armstrong 70 Francis 70 Rees 70
Hayes 60 Hart 60 Hudson 60 Newman 60 Barrett 60 Webster 60 Hunter 60 Gregory 60 Carr 60 Lowe 60
Page 60 Marsh 60 Riley 60 Dunn 60 Woods 60 Parsons 60 Berry 60 Stone 60 Reid 60 Holland 60
Hawkins 50 Harding 50 Porter 50 Robertson 50 Newton 50 Oliver 50 Reed 50 Kennedy 50 Williamson 50 Bird 50
Gardner 50 Shah 50 Dean 50 Lane 50 Cooke 50 Bates 50 Henderson 50 Parry 50 Burgess 50 Bishop 50
Walton 50 Burns 50 Nicholson 50 Shepherd 50 Ross 50 Cross 50 Long 50 Freeman 50 Warren 50 Nicholls 50
Hamilton 40 Byrne 40 Sutton 40 McDonald 40 MacDonald 20 Yates 40 Hodgson 40 Robson 40 Curtis 40 Hopkins 40
O'Connor 40 Harper 40 Coleman 40 Watkins 40 Moss 40 McCarthy 40 Chambers 40 O'Neill 40 Griffin 40 Sharp 40
Hardy 40 Wheeler 40 Potter 40 Osborne 40 Johnston 40 Gordon 40 Doyle 40 Wallace 40 George 40 Jordan 40
Hutchinson 30 Rahman 30 Nowak 30 Kowalski 20 Mahmood 30 Akhtar 30 Iqbal 30 Okafor 20 Mensah 20 Adeyemi 20
"""


def words(text: str) -> list[str]:
    """A text block of names (or postcode areas), one word each, in order."""
    return text.split()


_TAIL_START: Final = words("""
Ash Black Brad Bram Brook Cald Carl Chad Craw Dun Ells Fair Farn Gold Grim Hal Hart Hay Hol Kings
Lang Lock Marl Mid Moor Nor Oak Pen Red Rad Rush Sal Shel Stan Sud Thorn Tre Wal War Wes Whit Wild
Win Wy
""")
_TAIL_END: Final = words("""
ford ley ton worth field wood well by more ham stead bridge croft dale man ridge hurst cott ington
sby wick son er ell
""")
_GIVEN_TAIL_START: Final = words("""
Ar Bel Cal Dar El Fen Gil Hal Isa Jar Kal Lor Mar Nel Or Per Quin Ro Sel Tam Val Wen Xan Yar Zel
""")
_GIVEN_TAIL_END: Final = words("""
an en ia ie on is ella o yn ette us ric ley ia ora
""")
# The given-name and family-name tails: in the real register a long tail of rare names
# holds roughly a third of children (family) and a fifth (given).
FAMILY_TAIL_SHARE: Final = 0.35
GIVEN_TAIL_SHARE: Final = 0.2

AREAS: Final = words("""
B BS BD BL BN BR CB CF CH CM CO CR CV CW DA DE DH DN DY E EC EN EX G GL GU HA HD HG HP HU HX IG IP
KT L LE LN LS LU M ME MK N NE NG NN NR NW OL OX PE PL PO PR RG RM S SE SG SK SL SM SN SO SR SS ST SW
SY TA TF TN TQ TS TW UB W WA WD WF WN WR WS WV YO
""")


def parse_weighted(text: str) -> list[tuple[str, int]]:
    words = text.split()
    return [(words[i], int(words[i + 1])) for i in range(0, len(words), 2)]


class NameSource:
    """Draws names with a realistic skew: weighted common names plus a rare tail."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.boys = parse_weighted(BOYS)
        self.girls = parse_weighted(GIRLS)
        self.family = parse_weighted(FAMILY)
        self.family_tail = [a + b for a in _TAIL_START for b in _TAIL_END]
        self.given_tail = [a + b for a in _GIVEN_TAIL_START for b in _GIVEN_TAIL_END]

    def _weighted(self, pairs: list[tuple[str, int]]) -> str:
        return self.rng.choices([n for n, _ in pairs], weights=[w for _, w in pairs])[0]

    def given(self, sex: str) -> str:
        if self.rng.random() < GIVEN_TAIL_SHARE:
            return self.rng.choice(self.given_tail)
        return self._weighted(self.boys if sex == "M" else self.girls)

    def family_name(self) -> str:
        if self.rng.random() < FAMILY_TAIL_SHARE:
            return self.rng.choice(self.family_tail)
        return self._weighted(self.family)

    def postcode(self) -> str:
        area = self.rng.choice(AREAS)
        district = self.rng.randint(1, 30)
        letters = "ABDEFGHJLNPQRSTUWXYZ"
        return f"{area}{district} {self.rng.randint(0, 9)}{self.rng.choice(letters)}{self.rng.choice(letters)}"
